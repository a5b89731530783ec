-- rotate, step 1, on the NEW key: ARGV = last access, idle ms, deadline ms (-1: none), then
-- field/value pairs of the session as read from the old key. Writes only if the key is free;
-- the rotation counts as activity, so the last access becomes now.
-- Replies {'OK'} | {'TAKEN'}.
if redis.call('EXISTS', key) == 1 then
  return { 'TAKEN' }
end
local now = now_ms()
hset_all(ARGV, 4)
local a = math.max(tonumber(ARGV[1]), now)
local d = tonumber(ARGV[3])
if d < 0 then
  d = nil
end
redis.call('HSET', key, '_a', int(a))
expire_at(a, tonumber(ARGV[2]), d, now)
return { 'OK' }
