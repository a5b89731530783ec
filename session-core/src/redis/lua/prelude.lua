-- Shared by every script but apply_attrs (which stays lean, see there).

local function int(n)
  return string.format('%d', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Reads a metadata record: 'GONE' (a tombstone), 'MOVED' + the successor's raw handle,
-- 'CORRUPT' + reason, or 'LIVE' + the metadata.
local function parse_meta(raw)
  local layout, state = string.byte(raw, 1, 2)
  if layout ~= LAYOUT then
    return 'CORRUPT', 'unknown layout version'
  elseif state == DELETED and #raw == 2 then
    return 'GONE'
  elseif state == MOVED and #raw == 34 then
    return 'MOVED', string.sub(raw, 3)
  elseif state ~= LIVE or #raw < LIVE_FIXED then
    return 'CORRUPT', 'garbled metadata'
  end
  local _, _, v, z, c, a, i, d = struct.unpack(META_FORMAT, raw)
  local p = nil
  if #raw > LIVE_FIXED then
    p = string.sub(raw, LIVE_FIXED + 1)
  end
  return 'LIVE', { v = v, z = z, c = c, a = a, i = i, d = (d > 0) and d or nil, p = p }
end

local function pack_meta(m)
  return struct.pack(META_FORMAT, LAYOUT, LIVE, m.v, m.z, m.c, m.a, m.i, m.d or 0) .. (m.p or '')
end

-- The session's state, as parse_meta says. Redis never shows a key past its expiry (kept at
-- the session's expiry instant), so no clock is needed to tell whether it is live.
local function meta()
  local raw = redis.pcall('HGET', key, META)
  if type(raw) == 'table' and raw.err then
    return 'CORRUPT', 'the key holds another type'
  end
  if not raw then
    if redis.call('EXISTS', key) == 1 then
      return 'CORRUPT', 'a hash without a metadata record'
    end
    return 'GONE'
  end
  return parse_meta(raw)
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

-- HSET / HDEL of a flat list from index `from` on, in chunks: Lua's unpack has a stack limit
-- (about 8000 values), and a delta may be as large as the limits allow.
local function chunked(command, list, from)
  local j = from
  while j <= #list do
    local last = math.min(j + 999, #list)
    redis.call(command, key, unpack(list, j, last))
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
