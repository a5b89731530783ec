-- replace: ARGV = a packed session's value as the client last read it, the value to set
-- instead. Sets it, keeping the key's expiry, only when the key holds exactly what was read
-- (see session_core::redis::recent: then the client's merge is the one apply_attrs would
-- make). Replies 1 (set) | 0 (the key holds anything else, or nothing: nothing written).
-- Bare (no layout.lua, no helpers): the commonest write, and nothing here needs them.
if redis.pcall('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
