-- apply_attrs: `apply` for the common delta of attribute operations only (put, remove,
-- increment) and guards, at most 1000 of them. ARGV = max session bytes, guard count, guards
-- as (kind, field, version) with kind V session version | A attribute version (field
-- '#name') | X absent (field '=name'), op count, ops as (kind, '=name', '#name', argument)
-- with kind P put | R remove | I increment. Replies as apply.lua (a success without
-- increment results is the bare version: measured, a table reply cost this script about 2 µs
-- of Redis CPU more than an integer, as much as one of its inner commands).
--
-- It is the write of almost every request, so it stands alone (no prelude) and stays lean:
-- no clock (the key's expiry is kept at the session's expiry instant, and Redis checks it on
-- every access), three metadata fields, one HMGET, one HSET, field names built by the client,
-- and few Lua allocations (each table or new string costs a script about 0.2 µs of Redis
-- CPU, as much as a GET). Its counter and size rules repeat apply.lua's on purpose (a shared
-- prelude would cost every call its closures); keep the two in step: the testkit's model
-- equivalence histories run both against the model.
local key = KEYS[1]
local MAX_COUNTER = 9007199254740991
-- The counts are compared as strings first: `tonumber` runs `strtod`, and the common counts
-- (no guard, one operation) then cost nothing.
local guards = ARGV[2] == '0' and 0 or tonumber(ARGV[2])
local ops_at = 3 + 3 * guards
local ops = ARGV[ops_at] == '1' and 1 or tonumber(ARGV[ops_at])

-- One HMGET: state, version, size, then one field per attribute guard, then one per operation
-- (the old value of the attribute it writes), in argument order.
local r, first_op
local single_put = guards == 0 and ops == 1 and ARGV[ops_at + 1] == 'P'
-- A put needs only the old value's length. Fetching the value copies it into Lua; from about
-- 512 bytes on that costs Redis more than one more call, so for a large new value (the old
-- one is likely large too) ask for the attribute's short version field, which exists exactly
-- when the attribute does, and HSTRLEN the value below.
local by_length = single_put and #ARGV[ops_at + 4] >= 512
if by_length then
  r = redis.pcall('HMGET', key, '_s', '_v', '_z', ARGV[ops_at + 3])
elseif guards == 0 and ops == 1 then
  first_op = 4
  r = redis.pcall('HMGET', key, '_s', '_v', '_z', ARGV[ops_at + 2])
else
  local fields = { '_s', '_v', '_z' }
  local n = 3
  for g = 0, guards - 1 do
    if ARGV[3 + 3 * g] ~= 'V' then
      n = n + 1
      fields[n] = ARGV[4 + 3 * g]
    end
  end
  first_op = n + 1
  for o = 0, ops - 1 do
    n = n + 1
    fields[n] = ARGV[ops_at + 2 + 4 * o]
  end
  r = redis.pcall('HMGET', key, unpack(fields, 1, n))
end
if r.err then
  return { 'CORRUPT', 'the key holds another type' }
end

local state = r[1]
if state == 'deleted' then
  return { 'NOTFOUND' }
elseif state == 'moved' then
  return { 'MOVED', redis.call('HGET', key, '_f') }
elseif state then
  return { 'CORRUPT', 'unknown state' }
end
if not r[2] then
  if redis.call('EXISTS', key) == 1 then
    return { 'CORRUPT', 'a hash without a session version' }
  end
  return { 'NOTFOUND' }
end
local v, size = tonumber(r[2]), tonumber(r[3])
if not (v and size) then
  return { 'CORRUPT', 'garbled metadata' }
end

-- The commonest write of all, one put with no guard, without the general path's tables and
-- loops.
if single_put then
  local field, value = ARGV[ops_at + 2], ARGV[ops_at + 4]
  local name_len = #field - 1
  if r[4] then
    local old_len = by_length and redis.call('HSTRLEN', key, field) or #r[4]
    size = size - name_len - old_len
  end
  size = size + name_len + #value
  if size > tonumber(ARGV[1]) then
    return { 'LIMIT', size }
  end
  v = v + 1
  -- Numbers are formatted here, once each: Redis 7.0 turns a number argument of
  -- `redis.call` into text with `%.17g`, which costs more than formatting an integer.
  local version = string.format('%d', v)
  redis.call('HSET', key, '_v', version, '_z', string.format('%d', size), field, value,
    ARGV[ops_at + 3], version)
  return v
end

local k, at = 3, 3
for _ = 1, guards do
  local kind, version = ARGV[at], ARGV[at + 2]
  local holds
  if kind == 'V' then
    holds = v == tonumber(version)
  else
    k = k + 1
    if kind == 'A' then
      holds = r[k] == version
    else
      holds = r[k] == false
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

-- Run the operations on `cur` ('=name' -> new value, false once removed); nothing is
-- written until all of them succeeded. Sizes count names without their one-byte prefix.
local cur = {}
local results = { 'OK', v + 1 }
at = ops_at + 1
for o = 1, ops do
  local kind, field, arg = ARGV[at], ARGV[at + 1], ARGV[at + 3]
  at = at + 4
  local old = cur[field]
  if old == nil then
    old = r[first_op + o - 1]
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
  local name_len = #field - 1
  size = size - (old and (name_len + #old) or 0) + (new and (name_len + #new) or 0)
  cur[field] = new
end
if size > tonumber(ARGV[1]) then
  return { 'LIMIT', size }
end

-- Write each attribute's final value once (a delta may touch one several times).
local version = string.format('%d', v + 1)
local sets = { '_v', version, '_z', string.format('%d', size) }
local dels
at = ops_at + 1
for _ = 1, ops do
  local field, vfield = ARGV[at + 1], ARGV[at + 2]
  at = at + 4
  local value = cur[field]
  if value then
    sets[#sets + 1] = field
    sets[#sets + 1] = value
    sets[#sets + 1] = vfield
    sets[#sets + 1] = version
  elseif value == false then
    dels = dels or {}
    dels[#dels + 1] = field
    dels[#dels + 1] = vfield
  end
  cur[field] = nil
end
redis.call('HSET', key, unpack(sets))
if dels then
  redis.call('HDEL', key, unpack(dels))
end
if #results == 2 then
  return results[2]
end
return results
