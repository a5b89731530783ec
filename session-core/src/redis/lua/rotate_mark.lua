-- rotate, step 2, on the OLD key: ARGV = version as copied, the new handle (32 bytes), grace
-- ms. Turns the session into a forward only if no delta was applied since the copy (else the
-- caller removes the copy and starts again; touches do not matter, the copy counts as one).
-- Replies {'OK'} | {'CHANGED'} | {'NOTFOUND'} | {'MOVED', handle} | {'CORRUPT', reason}.
local state, m = meta(false)
if state ~= 'LIVE' then
  return not_live(state, m)
end
if m.v ~= tonumber(ARGV[1]) then
  return { 'CHANGED' }
end
redis.call('SET', key, string.char(LAYOUT, MOVED) .. ARGV[2], 'PX', ARGV[3])
return { 'OK' }
