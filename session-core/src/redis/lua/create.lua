-- create: ARGV = idle ms, deadline mode (N never | A at | F from now), deadline ms,
--   principal ('' for none), size, then name / stored value pairs (the client writes each
--   value with its version, 1, in front).
-- Writes only if the key is free. Replies {'OK', now, deadline or -1} | {'TAKEN'} | {'PAST'}.
if redis.call('EXISTS', key) == 1 then
  return { 'TAKEN' }
end
local now = now_ms()
local idle = tonumber(ARGV[1])
local d = nil
if ARGV[2] == 'A' then
  d = tonumber(ARGV[3])
elseif ARGV[2] == 'F' then
  d = now + tonumber(ARGV[3])
end
if d and d <= now then
  return { 'PAST' }
end
local p = (ARGV[4] ~= '') and ARGV[4] or nil
local m = { v = 1, z = tonumber(ARGV[5]), c = now, a = now, i = idle, d = d, p = p }
redis.call('HSET', key, META, pack_meta(m))
chunked('HSET', ARGV, 6)
expire_at(now, idle, d, now)
return { 'OK', now, d or -1 }
