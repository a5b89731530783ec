-- delete: ARGV = grace ms. A live session becomes a tombstone for the grace period, so a
-- request still in flight cannot write it back. Replies {'OK', 1 | 0} | {'MOVED', handle}
--   | {'CORRUPT', reason}.
local state, m = meta(false)
if state == 'MOVED' or state == 'CORRUPT' then
  return not_live(state, m)
elseif state == 'GONE' then
  return { 'OK', 0 }
end
redis.call('SET', key, string.char(LAYOUT, DELETED), 'PX', ARGV[1])
return { 'OK', 1 }
