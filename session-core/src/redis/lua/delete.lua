-- delete: ARGV = grace ms. A live session becomes a tombstone for the grace period, so a
-- request still in flight cannot write it back. Replies {'OK', 1 | 0} | {'MOVED', handle}
--   | {'CORRUPT', reason}.
local now = now_ms()
local state, m = meta(now)
if state == 'MOVED' or state == 'CORRUPT' then
  return not_live(state, m)
elseif state == 'GONE' then
  return { 'OK', 0 }
end
redis.call('DEL', key)
redis.call('HSET', key, '_s', 'deleted')
redis.call('PEXPIRE', key, ARGV[1])
return { 'OK', 1 }
