-- rotate, step 1, on the NEW key: ARGV = the old session as read: 'S' and the packed string,
-- or 'H', its metadata record, then its attribute field / stored value pairs. Writes only if
-- the key is free, in the form it was read in; the rotation counts as activity, so the last
-- access becomes now.
-- Replies {'OK'} | {'TAKEN'} | {'CORRUPT', reason}.
if redis.call('EXISTS', key) == 1 then
  return { 'TAKEN' }
end
local state, m, stop = parse_meta(ARGV[2])
if state ~= 'LIVE' or (ARGV[1] == 'H' and stop <= #ARGV[2]) then
  return { 'CORRUPT', 'a copy of no live session' }
end
local now = now_ms()
if now > m.a then
  m.a = now
end
if ARGV[1] == 'S' then
  redis.call('SET', key, pack_meta(m) .. string.sub(ARGV[2], stop))
else
  redis.call('HSET', key, META, pack_meta(m))
  chunked('HSET', ARGV, 3)
end
expire_at(m.a, m.i, m.d, now)
return { 'OK' }
