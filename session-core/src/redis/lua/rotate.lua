-- rotate, on the OLD key and the NEW key (KEYS[2], in the same cluster slot: the store draws
-- the new token so). ARGV = the new handle (32 bytes), grace ms, the principal the caller
-- indexed the new handle under ('' for none). Moves the session to the new key and turns the
-- old one into a forward in one step, so no write lands between the copy and the forward,
-- and a second rotation of the old token finds the forward instead of a session.
-- Replies {'OK'} (then index_follow's tail for a session with a principal) | {'TAKEN'} (the new key is in use) | {'CHANGED'} (the principal is not the
--   one indexed) | {'NOTFOUND'} | {'MOVED', handle} (rotated already) | {'CORRUPT', reason}.
local state, m = meta(false)
if state ~= 'LIVE' then
  return not_live(state, m)
end
if (m.p or '') ~= ARGV[3] then
  return { 'CHANGED' }
end
local new = KEYS[2]
if redis.call('EXISTS', new) == 1 then
  return { 'TAKEN' }
end
redis.call('COPY', key, new)
-- The rotation counts as activity: the last access becomes now.
local now = now_ms()
if now > m.a then
  m.a = now
  write_last_access(new, m)
end
local exp = expiry(m.a, m.i, m.d)
redis.call('PEXPIREAT', new, int(exp))
redis.call('SET', key, string.char(LAYOUT, MOVED) .. ARGV[1], 'PX', ARGV[2])
if m.p then
  return index_follow({ 'OK' }, m.p, exp, exp, true)
end
return { 'OK' }
