-- apply_attrs: `apply` for the common delta of attribute operations only (put, remove,
-- increment) and guards, at most 1000 of them. ARGV = the form the client expects (S packed
-- | H hashed: a hint, see below), max session bytes, guard count, guards as (kind, name,
-- version) with kind V session version (decimal) | A attribute version (8 bytes,
-- little-endian) | X absent, op count, ops as (kind, name, argument) with kind P put |
-- R remove | I increment. Replies as apply.lua (a success without increment results is the
-- bare version: measured, a table reply cost this script about 2 µs of Redis CPU more than
-- an integer, as much as one of its inner commands).
--
-- It is the write of almost every request, so it takes only layout.lua and forms.lua (no
-- prelude: its closures would cost every call) and stays lean: no clock (Redis keeps the
-- key's expiry at the session's expiry instant, and checks it on every access); one GET and
-- one SET for a packed session, one HMGET and one HSET for a hashed one; the metadata
-- record's times and principal copied as bytes; few Lua allocations (each table or new
-- string costs a script about 0.2 µs of Redis CPU, as much as a GET). Its counter and size
-- rules repeat apply.lua's on purpose; keep the two in step: the testkit's model
-- equivalence histories run both against the model.
local guards = ARGV[3] == '0' and 0 or tonumber(ARGV[3])
local ops_at = 4 + 3 * guards
local ops = ARGV[ops_at] == '1' and 1 or tonumber(ARGV[ops_at])
local max_bytes = tonumber(ARGV[2])

-- Sessions from this many bytes on take a one-put delta in place (see below).
local IN_PLACE_FROM = 512
local single_put = guards == 0 and ops == 1 and ARGV[ops_at + 1] == 'P'

-- Read. The session's form decides the first command: a packed session is one GET, a hashed
-- one one HMGET (the metadata record, then one field per attribute guard, then one per
-- operation: the stored value of the attribute it writes, in argument order). The client's
-- hint picks which to try first; the wrong one answers WRONGTYPE (about 0.9 µs of Redis CPU)
-- and the other follows, so a stale hint costs time, never correctness.
local hinted_hashed = ARGV[1] == 'H'
local raw, r, first_op, by_length
local packed = not hinted_hashed
if packed then
  raw = redis.pcall('GET', key)
  packed = type(raw) ~= 'table'
end
if not packed then
  -- A put needs only the old value's length. Fetching the value copies it into Lua; from
  -- about 512 bytes on that costs Redis more than one more call, so for a large new value
  -- (the old one is likely large too) HSTRLEN the old value below instead.
  by_length = single_put and #ARGV[ops_at + 3] >= 512
  if by_length then
    r = redis.pcall('HMGET', key, META)
  elseif guards == 0 and ops == 1 then
    first_op = 2
    r = redis.pcall('HMGET', key, META, ARGV[ops_at + 2])
  else
    local fields = { META }
    local n = 1
    for g = 0, guards - 1 do
      if ARGV[4 + 3 * g] ~= 'V' then
        n = n + 1
        fields[n] = ARGV[5 + 3 * g]
      end
    end
    first_op = n + 1
    for o = 0, ops - 1 do
      n = n + 1
      fields[n] = ARGV[ops_at + 2 + 3 * o]
    end
    r = redis.pcall('HMGET', key, unpack(fields, 1, n))
  end
  if r.err then
    if not hinted_hashed then
      return { 'CORRUPT', 'the key holds another type' }
    end
    -- The hint was stale: the session is packed (or the key holds another type).
    raw = redis.pcall('GET', key)
    if type(raw) == 'table' then
      return { 'CORRUPT', 'the key holds another type' }
    end
    packed = true
  else
    raw = r[1]
    if not raw then
      if hinted_hashed and redis.call('EXISTS', key) == 0 then
        return { 'NOTFOUND' }
      end
      return { 'CORRUPT', 'a hash without a metadata record' }
    end
  end
end
if packed and not raw then
  return { 'NOTFOUND' }
end

local layout, state = string.byte(raw, 1, 2)
if layout ~= LAYOUT then
  return { 'CORRUPT', 'unknown layout version' }
elseif state == DELETED and #raw == 2 then
  return { 'NOTFOUND' }
elseif state == MOVED and #raw == 34 then
  return { 'MOVED', string.sub(raw, 3) }
elseif state ~= LIVE or #raw < LIVE_FIXED then
  return { 'CORRUPT', 'garbled metadata' }
end
-- Only the version and the size change; the rest of the record (times, principal) is
-- copied as it is.
local _, _, v, size = struct.unpack('<BBI8I8', raw)
local stop = LIVE_FIXED + struct.unpack('<I2', raw, LIVE_FIXED - 1)
if #raw < stop or (not packed and #raw ~= stop) then
  return { 'CORRUPT', 'garbled metadata' }
end

-- The commonest write of all, one put with no guard, without the general path's tables and
-- loops. In a packed session it finds the one entry by its header alone and splices the new
-- one in: no other entry becomes a Lua string (measured on 10 x 100 B: 18 µs of Redis CPU
-- per call when every entry was unpacked and packed again).
if single_put and packed then
  local field, value = ARGV[ops_at + 2], ARGV[ops_at + 3]
  local n, pos, flen = #raw, stop + 1, #field
  local from, to, old_len = n + 1, n, 0
  -- Every entry is framed (the session as a whole is not damaged); the first one of the
  -- name is the attribute, and damage to it is damage to what the put names.
  while pos <= n do
    if pos + 5 > n then
      return { 'CORRUPT', 'garbled attributes' }
    end
    local nlen = struct.unpack('<I2', raw, pos)
    local at_len = pos + 2 + nlen
    if at_len + 3 > n then
      return { 'CORRUPT', 'garbled attributes' }
    end
    local slen = struct.unpack('<I4', raw, at_len)
    local last = at_len + 3 + slen
    if last > n then
      return { 'CORRUPT', 'garbled attributes' }
    end
    if from > n and nlen == flen and string.sub(raw, pos + 2, at_len - 1) == field then
      if slen < VERSION_BYTES then
        return { 'CORRUPT', 'an attribute field without a version' }
      end
      from, to, old_len = pos, last, slen
    end
    pos = last + 1
  end
  if old_len > 0 then
    size = size - flen - (old_len - VERSION_BYTES)
  end
  size = size + flen + #value
  if size > max_bytes then
    return { 'LIMIT', size }
  end
  v = v + 1
  local entry = struct.pack('<I2c0I4I8', flen, field, VERSION_BYTES + #value, v) .. value
  if n >= IN_PLACE_FROM and (#entry == to - from + 1 or from > n)
      and n + #entry - (to - from + 1) - stop <= PACKED_MAX then
    -- A value of the same length (a counter, a token, a flag), or a new attribute, in a
    -- session of some size: edit the string in place, as building a new one in Lua (and
    -- replicating it) costs more than the second call from about 512 bytes on.
    if from > n then
      redis.call('APPEND', key, entry)
    else
      redis.call('SETRANGE', key, from - 1, entry)
    end
    redis.call('SETRANGE', key, 2, struct.pack('<I8I8', v, size))
    return v
  end
  local record = struct.pack('<BBI8I8', LAYOUT, LIVE, v, size) .. string.sub(raw, 19, stop)
  if n - stop - (to - from + 1) + #entry > PACKED_MAX then
    local all = unpack_entries(raw, stop + 1)
    if not all then
      return { 'CORRUPT', 'garbled attributes' }
    end
    all[field] = string.sub(entry, 7 + flen)
    write_packed(record, all)
  else
    redis.call('SET', key, record .. string.sub(raw, stop + 1, from - 1) .. entry
      .. string.sub(raw, to + 1), 'KEEPTTL')
  end
  return v
end

if single_put then
  local field, value = ARGV[ops_at + 2], ARGV[ops_at + 3]
  local old_len
  if by_length then
    old_len = redis.call('HSTRLEN', key, field)
  else
    old_len = r[2] and #r[2] or 0
  end
  if old_len > 0 then
    if old_len < VERSION_BYTES then
      return { 'CORRUPT', 'an attribute field without a version' }
    end
    size = size - #field - (old_len - VERSION_BYTES)
  end
  size = size + #field + #value
  if size > max_bytes then
    return { 'LIMIT', size }
  end
  v = v + 1
  local record = struct.pack('<BBI8I8', LAYOUT, LIVE, v, size) .. string.sub(raw, 19, stop)
  redis.call('HSET', key, META, record, field, struct.pack('<I8', v) .. value)
  maybe_repack(record, size)
  return v
end

-- A packed session's entries (name -> stored value), unpacked for the general path only.
local entries
if packed then
  entries = unpack_entries(raw, stop + 1)
  if not entries then
    return { 'CORRUPT', 'garbled attributes' }
  end
end

-- The stored value (version in front) of the attribute `field`, the `k`-th HMGET answer of
-- a hashed session; false when absent.
local function before(k, field)
  if packed then
    return entries[field] or false
  end
  return r[k]
end

local k, at = 1, 4
for _ = 1, guards do
  local kind, version = ARGV[at], ARGV[at + 2]
  local holds
  if kind == 'V' then
    holds = v == tonumber(version)
  else
    k = k + 1
    local old = before(k, ARGV[at + 1])
    if old and #old < VERSION_BYTES then
      return { 'CORRUPT', 'an attribute field without a version' }
    end
    if kind == 'A' then
      holds = old and string.sub(old, 1, VERSION_BYTES) == version
    else
      holds = old == false
    end
  end
  if not holds then
    return { 'CONFLICT', v }
  end
  at = at + 3
end
if ops == 0 then
  return v
end

-- Run the operations on `cur` (name -> new value, false once removed); nothing is written
-- until all of them succeeded. Sizes count names and values, not the versions in front.
local cur = {}
local results = { 'OK', v + 1 }
at = ops_at + 1
for o = 1, ops do
  local kind, field, arg = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  local old = cur[field]
  if old == nil then
    old = before(first_op and first_op + o - 1, field)
    if old then
      if #old < VERSION_BYTES then
        return { 'CORRUPT', 'an attribute field without a version' }
      end
      old = string.sub(old, VERSION_BYTES + 1)
    end
  end
  local new
  if kind == 'P' then
    new = arg
  elseif kind == 'R' then
    new = false
  elseif kind == 'I' then
    local count = 0
    if old and old ~= '0' then
      if #old > 17 or not string.match(old, '^%-?[1-9]%d*$') then
        return { 'TYPE', o }
      end
      count = tonumber(old)
      if count > MAX_COUNTER or count < -MAX_COUNTER then
        return { 'TYPE', o }
      end
    end
    count = count + tonumber(arg)
    if count > MAX_COUNTER or count < -MAX_COUNTER then
      return { 'OVERFLOW', o }
    end
    new = string.format('%d', count)
    results[#results + 1] = count
  else
    return { 'BADOP', o }
  end
  size = size - (old and (#field + #old) or 0) + (new and (#field + #new) or 0)
  cur[field] = new
end
if size > max_bytes then
  return { 'LIMIT', size }
end

-- Write each attribute's final value once (a delta may touch one several times).
v = v + 1
local prefix = struct.pack('<I8', v)
local record = struct.pack('<BBI8I8', LAYOUT, LIVE, v, size) .. string.sub(raw, 19, stop)
local sets = { META, record }
local dels
at = ops_at + 1
for _ = 1, ops do
  local field = ARGV[at + 1]
  at = at + 3
  local value = cur[field]
  if packed then
    if value then
      entries[field] = prefix .. value
    elseif value == false then
      entries[field] = nil
    end
  elseif value then
    sets[#sets + 1] = field
    sets[#sets + 1] = prefix .. value
  elseif value == false then
    dels = dels or {}
    dels[#dels + 1] = field
  end
  cur[field] = nil
end
if packed then
  write_packed(record, entries)
else
  redis.call('HSET', key, unpack(sets))
  if dels then
    redis.call('HDEL', key, unpack(dels))
  end
  maybe_repack(record, size)
end
if #results == 2 then
  return results[2]
end
return results
