-- touch: ARGV = interval ms. Moves the last access to now if it is at least the effective
-- interval old: `interval` capped at half the idle timeout (Policy::touch_due).
-- Replies {'OK', now, last access} | {'NOTFOUND', now} | {'MOVED', handle} | {'CORRUPT', reason}.
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
local interval = math.min(tonumber(ARGV[1]), math.floor(m.i / 2))
if now > a and now - a >= interval then
  a = now
  redis.call('HSET', key, '_a', int(a))
  expire_at(a, m.i, m.d, now)
end
return { 'OK', now, a }
