-- rotate, step 2, on the OLD key: ARGV = version as copied, new handle, grace ms. Turns the
-- session into a forward only if no delta was applied since the copy (else the caller removes
-- the copy and starts again; touches do not matter, the copy counts as a touch).
-- Replies {'OK'} | {'CHANGED'} | {'NOTFOUND'} | {'MOVED', handle} | {'CORRUPT', reason}.
local now = now_ms()
local state, m = meta(now)
if state ~= 'LIVE' then
  return not_live(state, m)
end
if m.v ~= tonumber(ARGV[1]) then
  return { 'CHANGED' }
end
redis.call('DEL', key)
redis.call('HSET', key, '_s', 'moved', '_f', ARGV[2])
redis.call('PEXPIRE', key, ARGV[3])
return { 'OK' }
