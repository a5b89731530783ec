-- delete: ARGV = grace ms. A live session becomes a tombstone for the grace period, so a
-- request still in flight cannot write it back. Replies {'OK', 1 | 0} | {'MOVED', handle}
--   | {'CORRUPT', reason}.
local state, m = meta()
if state == 'MOVED' or state == 'CORRUPT' then
  return not_live(state, m)
elseif state == 'GONE' then
  return { 'OK', 0 }
end
redis.call('DEL', key)
redis.call('HSET', key, META, string.char(LAYOUT, DELETED))
redis.call('PEXPIRE', key, ARGV[1])
return { 'OK', 1 }
