-- create: ARGV = idle ms, deadline mode (N never | A at | F from now), deadline ms,
--   principal ('' for none), size, then name/value pairs.
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
local fields = { '_v', '1', '_c', int(now), '_a', int(now), '_i', int(idle), '_z', ARGV[5] }
if d then
  table.insert(fields, '_d'); table.insert(fields, int(d))
end
if ARGV[4] ~= '' then
  table.insert(fields, '_p'); table.insert(fields, ARGV[4])
end
for j = 6, #ARGV, 2 do
  table.insert(fields, '=' .. ARGV[j]); table.insert(fields, ARGV[j + 1])
  table.insert(fields, '#' .. ARGV[j]); table.insert(fields, '1')
end
hset_all(fields, 1)
expire_at(now, idle, d, now)
return { 'OK', now, d or -1 }
