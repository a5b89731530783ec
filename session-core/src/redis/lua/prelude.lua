-- Shared by every script but apply_attrs (which stays lean, see there).

local function int(n)
  return string.format('%d', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Reads the metadata record at the start of `raw`: 'GONE' (a tombstone), 'MOVED' + the
-- successor's raw handle, 'CORRUPT' + reason, or 'LIVE' + the metadata + where the record
-- ends (a packed session's entries start there).
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
  local _, _, v, z, c, a, i, d, plen = struct.unpack(META_FORMAT, raw)
  if #raw < LIVE_FIXED + plen then
    return 'CORRUPT', 'garbled metadata'
  end
  local p = nil
  if plen > 0 then
    p = string.sub(raw, LIVE_FIXED + 1, LIVE_FIXED + plen)
  end
  local m = { v = v, z = z, c = c, a = a, i = i, d = (d > 0) and d or nil, p = p }
  return 'LIVE', m, LIVE_FIXED + plen + 1
end

local function pack_meta(m)
  local p = m.p or ''
  return struct.pack(META_FORMAT, LAYOUT, LIVE, m.v, m.z, m.c, m.a, m.i, m.d or 0, #p) .. p
end

-- Whether the entries from byte `pos` of `raw` can be framed, read without making a Lua
-- string of any of them (for scripts that do not change the attributes).
local function entries_framed(raw, pos)
  local n = #raw
  while pos <= n do
    if pos + 5 > n then
      return false
    end
    local at_len = pos + 2 + struct.unpack('<I2', raw, pos)
    if at_len + 3 > n then
      return false
    end
    pos = at_len + 4 + struct.unpack('<I4', raw, at_len)
    if pos - 1 > n then
      return false
    end
  end
  return true
end

-- The form the session was read in: 'S' packed or 'H' hashed; for a packed session also
-- its entries (name -> stored value).
local form, entries

-- The session's state, as parse_meta says, read in either form (a packed session's entries
-- only `with_entries`; without, they are only checked to be framed, so every script rejects
-- the same damage to the session as a whole). Redis never shows a key past its expiry (kept
-- at the session's expiry instant), so no clock is needed to tell whether it is live.
local function meta(with_entries)
  local raw = redis.pcall('GET', key)
  if type(raw) == 'table' then
    raw = redis.pcall('HGET', key, META)
    if type(raw) == 'table' then
      return 'CORRUPT', 'the key holds another type'
    elseif not raw then
      return 'CORRUPT', 'a hash without a metadata record'
    end
    form = 'H'
    local state, m, stop = parse_meta(raw)
    if state == 'LIVE' and stop <= #raw then
      return 'CORRUPT', 'garbled metadata'
    end
    return state, m
  elseif not raw then
    return 'GONE'
  end
  form = 'S'
  local state, m, stop = parse_meta(raw)
  if state == 'LIVE' then
    local framed
    if with_entries then
      entries = unpack_entries(raw, stop)
      framed = entries ~= nil
    else
      framed = entries_framed(raw, stop)
    end
    if not framed then
      return 'CORRUPT', 'garbled attributes'
    end
  end
  return state, m
end

-- A stored attribute value (version in front) as read, false when absent.
local function stored_of(name)
  if form == 'S' then
    return entries[name] or false
  end
  return redis.call('HGET', key, name) or false
end

-- Writes the session back in its form (changing it when its size says so): the record of
-- `m`, and the attributes in `cur` (name -> new value, false once removed), each value
-- written at version m.v. The key keeps its expiry.
local function save(m, cur)
  local record = pack_meta(m)
  local prefix = struct.pack('<I8', m.v)
  if form == 'S' then
    for name, value in pairs(cur) do
      entries[name] = value and (prefix .. value) or nil
    end
    write_packed(record, entries)
    return
  end
  local sets, dels = { META, record }, {}
  for name, value in pairs(cur) do
    if value then
      sets[#sets + 1] = name
      sets[#sets + 1] = prefix .. value
    else
      dels[#dels + 1] = name
    end
  end
  chunked('HSET', sets, 1)
  chunked('HDEL', dels, 1)
  maybe_repack(record, m.z)
end

-- Writes `m`'s last access into the session at `target` (in the form it was read in): of a
-- packed session only its 8 bytes, not the session.
local function write_last_access(target, m)
  if form == 'S' then
    redis.call('SETRANGE', target, LAST_ACCESS_AT, struct.pack('<I8', m.a))
  else
    redis.call('HSET', target, META, pack_meta(m))
  end
end

-- Moves the key's expiry to the session's expiry instant (or ends it now).
local function expire_at(a, i, d, now)
  local exp = expiry(a, i, d)
  if exp <= now then
    redis.call('DEL', key)
  else
    redis.call('PEXPIREAT', key, int(exp))
  end
end

-- After a write that moved the expiry of a session with a principal into a later epoch
-- (the script's last argument, in ms), or `always` (it set the principal), its answer ends
-- with what the store needs to keep the principal's index at least as long as the session:
-- 'INDEX', the principal, the expiry before and after.
local function index_follow(reply, p, before, after, always)
  if not always then
    local epoch = tonumber(ARGV[#ARGV])
    if math.floor(after / epoch) <= math.floor(before / epoch) then
      return reply
    end
  end
  local n = #reply
  reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4] = 'INDEX', p, before, after
  return reply
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
