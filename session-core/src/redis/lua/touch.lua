-- touch: ARGV = interval ms. Moves the last access to now if it is at least `interval` old.
-- Replies {'OK', now, last access} | {'NOTFOUND', now} | {'MOVED', handle} | {'CORRUPT', reason}.
-- Loads pipeline it after reading the hash, so a load is one round trip.
local now = now_ms()
local state, m = meta(now)
if state ~= 'LIVE' then
  local reply = not_live(state, m)
  if reply[1] == 'NOTFOUND' then
    reply[2] = now
  end
  return reply
end
local a = m.a
if now - a >= tonumber(ARGV[1]) and now > a then
  a = now
  redis.call('HSET', key, '_a', int(a))
  expire_at(a, m.i, m.d, now)
end
return { 'OK', now, a }
