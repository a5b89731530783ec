-- apply_attrs: `apply` for the common delta of attribute operations only (put, remove,
-- increment) and guards, at most 1000 of them. Same arguments and replies as apply.lua.
--
-- It is the write of almost every request, so it stands alone (no prelude) and stays lean:
-- no clock (the key's expiry is kept at the session's expiry instant, and Redis checks it on
-- every access), three metadata fields, one HMGET, one HSET, and few Lua allocations (each
-- table, closure or new string costs a script about 0.2 µs of Redis CPU, as much as a GET).
local key = KEYS[1]
local MAX_COUNTER = 9007199254740991
local guards = tonumber(ARGV[2])
local ops_at = 3 + 3 * guards
local ops = tonumber(ARGV[ops_at])

-- One HMGET: state, version, size, then one field per attribute guard, then one per operation
-- (the old value of the attribute it writes), in argument order.
local fields = { '_s', '_v', '_z' }
local n = 3
for g = 0, guards - 1 do
  local kind = ARGV[3 + 3 * g]
  if kind == 'A' then
    n = n + 1
    fields[n] = '#' .. ARGV[4 + 3 * g]
  elseif kind == 'X' then
    n = n + 1
    fields[n] = '=' .. ARGV[4 + 3 * g]
  end
end
local first_op = n + 1
for o = 0, ops - 1 do
  n = n + 1
  fields[n] = '=' .. ARGV[ops_at + 2 + 3 * o]
end
local r = redis.pcall('HMGET', key, unpack(fields, 1, n))
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
  return { 'OK', v }
end

-- Run the operations on `cur` (name -> new value, false once removed); nothing is written
-- until all of them succeeded.
local cur = {}
local results = { 'OK', v + 1 }
local removed = false
at = ops_at + 1
for o = 1, ops do
  local kind, name, arg = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  local old = cur[name]
  if old == nil then
    old = r[first_op + o - 1]
  end
  local new
  if kind == 'P' then
    new = arg
  elseif kind == 'R' then
    new = false
    removed = true
  else
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
  end
  size = size - (old and (#name + #old) or 0) + (new and (#name + #new) or 0)
  cur[name] = new
end
if size > tonumber(ARGV[1]) then
  return { 'LIMIT', size }
end

local version = string.format('%d', v + 1)
local sets = { '_v', version, '_z', string.format('%d', size) }
local dels = removed and {} or nil
for name, value in pairs(cur) do
  if value then
    sets[#sets + 1] = '=' .. name
    sets[#sets + 1] = value
    sets[#sets + 1] = '#' .. name
    sets[#sets + 1] = version
  else
    dels[#dels + 1] = '=' .. name
    dels[#dels + 1] = '#' .. name
  end
end
redis.call('HSET', key, unpack(sets))
if dels and #dels > 0 then
  redis.call('HDEL', key, unpack(dels))
end
return results
