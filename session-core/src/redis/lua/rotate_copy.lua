-- rotate, step 1, on the NEW key: ARGV = the old session's metadata record as read, then its
-- attribute field / stored value pairs. Writes only if the key is free; the rotation counts
-- as activity, so the last access becomes now.
-- Replies {'OK'} | {'TAKEN'} | {'CORRUPT', reason}.
if redis.call('EXISTS', key) == 1 then
  return { 'TAKEN' }
end
local state, m = parse_meta(ARGV[1])
if state ~= 'LIVE' then
  return { 'CORRUPT', 'a copy of no live session' }
end
local now = now_ms()
if now > m.a then
  m.a = now
end
redis.call('HSET', key, META, pack_meta(m))
chunked('HSET', ARGV, 2)
expire_at(m.a, m.i, m.d, now)
return { 'OK' }
