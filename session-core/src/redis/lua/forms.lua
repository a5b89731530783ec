-- The two forms of a session (see layout.lua), read and written by every script.

-- A packed session's entries from byte `pos` of `raw`: name -> stored value, or nil when
-- they cannot be framed (truncated). Damage inside one entry (a value without its version,
-- a name that is not UTF-8) is that attribute's, found when a delta names it; a name packed
-- twice reads as its first entry (as the store's decoder reads it), and a rewrite drops the
-- second.
local function unpack_entries(raw, pos)
  local entries = {}
  local ok = pcall(function()
    local n, name, stored = #raw
    while pos <= n do
      name, stored, pos = struct.unpack(ENTRY_FORMAT, raw, pos)
      if not entries[name] then
        entries[name] = stored
      end
    end
  end)
  return ok and entries or nil
end

local function pack_entries(entries)
  local parts, n = {}, 0
  for name, stored in pairs(entries) do
    n = n + 1
    parts[n] = struct.pack(ENTRY_FORMAT, #name, name, #stored, stored)
  end
  return table.concat(parts)
end

-- The session's expiry instant: the earlier of last access plus idle timeout and the
-- deadline (0: none).
local function expiry(a, i, d)
  local exp = a + i
  if d and d > 0 and d < exp then
    exp = d
  end
  return exp
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

-- Writes a packed session: `record` and `entries`, packed while they fit in PACKED_MAX, else
-- hashed. The key keeps its expiry (SET's KEEPTTL keeps it across a change of type too).
local function write_packed(record, entries)
  local body = pack_entries(entries)
  if #body <= PACKED_MAX then
    redis.call('SET', key, record .. body, 'KEEPTTL')
    return
  end
  local exp = redis.call('PEXPIRETIME', key)
  local sets, n = { META, record }, 2
  for name, stored in pairs(entries) do
    sets[n + 1], sets[n + 2] = name, stored
    n = n + 2
  end
  redis.call('DEL', key)
  chunked('HSET', sets, 1)
  redis.call('PEXPIREAT', key, string.format('%d', exp))
end

-- After a write that left a hashed session at `size` bytes with `record`: packs it again
-- once its entries fit in REPACK_MAX.
local function maybe_repack(record, size)
  if size > REPACK_MAX then
    return
  end
  local all = redis.call('HGETALL', key)
  local entries, total = {}, 0
  for j = 1, #all, 2 do
    local name, stored = all[j], all[j + 1]
    if name ~= META then
      entries[name] = stored
      total = total + #name + #stored + 6
      if total > REPACK_MAX then
        return
      end
    end
  end
  write_packed(record, entries)
end
