-- Shared by every script. KEYS[1] is always the one session key the script touches, so each
-- script is atomic on one shard and legal in Redis Cluster.
--
-- Layout of a session hash (see session_core::redis):
--   _v version  _c created ms  _a last access ms  _i idle ms  _d deadline ms (optional)
--   _p principal (optional)  _z bytes of names+values
--   =<name> attribute value   #<name> version that last wrote it
-- A deleted session is a hash {_s = "deleted"}; a rotated one {_s = "moved", _f = <handle>};
-- both expire after their grace period.
local key = KEYS[1]
local MAX_COUNTER = 9007199254740991

local function int(n)
  return string.format('%d', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The session's state: 'GONE', 'MOVED' + target, 'CORRUPT' + reason, or 'LIVE' + metadata.
-- Expiry is checked here against the server's clock, even if Redis has not evicted the key.
local function meta(now)
  local r = redis.pcall('HMGET', key, '_s', '_f', '_v', '_c', '_a', '_i', '_d', '_p', '_z')
  if r.err then
    return 'CORRUPT', 'the key holds another type'
  end
  if r[1] == 'deleted' then
    return 'GONE'
  elseif r[1] == 'moved' then
    return 'MOVED', r[2]
  elseif r[1] then
    return 'CORRUPT', 'unknown state'
  end
  if not r[3] then
    if redis.call('EXISTS', key) == 1 then
      return 'CORRUPT', 'a hash without a session version'
    end
    return 'GONE'
  end
  local m = {
    v = tonumber(r[3]), c = tonumber(r[4]), a = tonumber(r[5]), i = tonumber(r[6]),
    d = r[7] and tonumber(r[7]), p = r[8] or nil, z = tonumber(r[9]),
  }
  if not (m.v and m.c and m.a and m.i and m.z) or (r[7] and not m.d) then
    return 'CORRUPT', 'garbled metadata'
  end
  m.exp = m.a + m.i
  if m.d and m.d < m.exp then
    m.exp = m.d
  end
  if now >= m.exp then
    return 'GONE'
  end
  return 'LIVE', m
end

-- Moves the key's expiry to the session's expiry instant (or ends it now).
local function expire_at(a, i, d, now)
  local exp = a + i
  if d and d < exp then
    exp = d
  end
  if exp <= now then
    redis.call('DEL', key)
  else
    redis.call('PEXPIREAT', key, int(exp))
  end
end

-- HSET of a flat field/value list from index `from` on, in chunks: Lua's unpack has a small
-- stack limit, and a session may have thousands of attributes.
local function hset_all(list, from)
  local j = from
  while j <= #list do
    local last = math.min(j + 999, #list)
    redis.call('HSET', key, unpack(list, j, last))
    j = last + 1
  end
end

-- Common answers for a session that is not live.
local function not_live(state, detail)
  if state == 'MOVED' then
    return { 'MOVED', detail }
  elseif state == 'CORRUPT' then
    return { 'CORRUPT', detail }
  end
  return { 'NOTFOUND' }
end
