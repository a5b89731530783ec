-- apply: ARGV = max session bytes, guard count, guards as (kind, name, version) with kind
--   V session version | A attribute version | X absent, op count, ops as (kind, a, b):
--   P put name value | R remove name | I increment name by | T idle ms | D deadline mode ms
--   | U principal ('' clears) | H touch.
-- Replies {'OK', version, increment results...} (without increment results: the bare
--   version, an integer reply, which Redis 7.0 answers cheaper than a table)
--   | {'NOTFOUND'} | {'MOVED', handle} | {'CONFLICT', version} | {'TYPE', op}
--   | {'OVERFLOW', op} | {'LIMIT', size} | {'CORRUPT', reason}. Nothing is written unless
--   the reply is OK.
local now = now_ms()
local state, m = meta(now)
if state ~= 'LIVE' then
  return not_live(state, m)
end

local guards = tonumber(ARGV[2])
local at = 3
for _ = 1, guards do
  local kind, name, version = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  local holds
  if kind == 'V' then
    holds = m.v == tonumber(version)
  elseif kind == 'A' then
    holds = redis.call('HGET', key, '#' .. name) == version
  else
    holds = redis.call('HEXISTS', key, '=' .. name) == 0
  end
  if not holds then
    return { 'CONFLICT', m.v }
  end
end

local ops = tonumber(ARGV[at])
at = at + 1
if ops == 0 then
  return m.v
end

-- Run the operations on a copy: `cur` holds every attribute this delta touched (a string, or
-- false once removed); nothing is written until all of them succeeded. `orig` caches what
-- was read, so no field is read twice.
local cur, orig = {}, {}
local size = m.z
local function stored(name)
  if orig[name] == nil then
    orig[name] = redis.call('HGET', key, '=' .. name)
  end
  return orig[name]
end
local function value(name)
  if cur[name] ~= nil then
    return cur[name]
  end
  return stored(name)
end
local function old_size(name)
  local v = value(name)
  return v and (#name + #v) or 0
end
local function set(name, v)
  size = size - old_size(name) + (v and (#name + #v) or 0)
  cur[name] = v
end
local function counter(v)
  if v == '0' then
    return 0
  end
  if #v > 17 or not string.match(v, '^%-?[1-9]%d*$') then
    return nil
  end
  local n = tonumber(v)
  if n > MAX_COUNTER or n < -MAX_COUNTER then
    return nil
  end
  return n
end

local a, i, d, p = m.a, m.i, m.d, m.p
local results = { 'OK', m.v + 1 }
for op = 1, ops do
  local kind, x, y = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  if kind == 'P' then
    set(x, y)
  elseif kind == 'R' then
    set(x, false)
  elseif kind == 'I' then
    local old = value(x)
    local n = 0
    if old then
      n = counter(old)
      if not n then
        return { 'TYPE', op }
      end
    end
    local new = n + tonumber(y)
    if new > MAX_COUNTER or new < -MAX_COUNTER then
      return { 'OVERFLOW', op }
    end
    set(x, int(new))
    table.insert(results, new)
  elseif kind == 'T' then
    i = tonumber(x)
  elseif kind == 'D' then
    if x == 'N' then
      d = nil
    elseif x == 'A' then
      d = tonumber(y)
    else
      d = now + tonumber(y)
    end
  elseif kind == 'U' then
    p = (x ~= '') and x or nil
  elseif kind == 'H' then
    if now > a then
      a = now
    end
  end
end
if size > tonumber(ARGV[1]) then
  return { 'LIMIT', size }
end

local version = int(m.v + 1)
local sets = { '_v', version, '_z', int(size) }
local dels = {}
for name, v in pairs(cur) do
  if v then
    table.insert(sets, '=' .. name); table.insert(sets, v)
    table.insert(sets, '#' .. name); table.insert(sets, version)
  elseif stored(name) then
    table.insert(dels, '=' .. name); table.insert(dels, '#' .. name)
  end
end
if a ~= m.a then
  table.insert(sets, '_a'); table.insert(sets, int(a))
end
if i ~= m.i then
  table.insert(sets, '_i'); table.insert(sets, int(i))
end
if d and d ~= m.d then
  table.insert(sets, '_d'); table.insert(sets, int(d))
elseif m.d and not d then
  table.insert(dels, '_d')
end
if p and p ~= m.p then
  table.insert(sets, '_p'); table.insert(sets, p)
elseif m.p and not p then
  table.insert(dels, '_p')
end
hset_all(sets, 1)
if #dels > 0 then
  redis.call('HDEL', key, unpack(dels))
end
if a ~= m.a or i ~= m.i or d ~= m.d then
  expire_at(a, i, d, now)
end
if #results == 2 then
  return results[2]
end
return results
