-- touch: ARGV = threshold ms, the index epoch ms (see index_follow). Moves the last access to now if it is at least that old
-- (Policy::load_touch chooses the threshold; an explicit touch sends 0).
-- Replies {'OK', last access} (then index_follow's tail when it moved the expiry of a session
-- with a principal) | {'NOTFOUND'} | {'MOVED', handle} | {'CORRUPT', reason}.
local state, m = meta(false)
if state ~= 'LIVE' then
  return not_live(state, m)
end
local now = now_ms()
if now > m.a and now - m.a >= tonumber(ARGV[1]) then
  local before = expiry(m.a, m.i, m.d)
  m.a = now
  write_last_access(key, m)
  expire_at(m.a, m.i, m.d, now)
  if m.p then
    return index_follow({ 'OK', m.a }, m.p, before, expiry(m.a, m.i, m.d), false)
  end
end
return { 'OK', m.a }
