-- create: ARGV = idle ms, deadline mode (N never | A at | F from now), deadline ms,
--   principal ('' for none), size, the form ('S' packed | 'H' hashed), then the attributes
--   as the form stores them, each value with its version (1) in front: 'S', one argument of
--   packed entries; 'H', name / stored value pairs.
-- Writes only if the key is free. Replies {'OK', now, deadline or -1} | {'TAKEN'} | {'PAST'}.
local packed = ARGV[6] == 'S'
if not packed and redis.call('EXISTS', key) == 1 then
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
if packed then
  -- NX: written only if the key is free.
  if not redis.call('SET', key, pack_meta(m) .. ARGV[7], 'PXAT', int(expiry(now, idle, d)), 'NX') then
    return { 'TAKEN' }
  end
else
  redis.call('HSET', key, META, pack_meta(m))
  chunked('HSET', ARGV, 7)
  expire_at(now, idle, d, now)
end
return { 'OK', now, d or -1 }
