-- apply: ARGV = max session bytes, guard count, guards as (kind, name, version) with kind
--   V session version (decimal) | A attribute version (8 bytes, little-endian) | X absent,
--   op count, ops as (kind, a, b): P put name value | R remove name | I increment name by
--   | T idle ms | D deadline mode ms | U principal ('' clears) | H touch; last, the index
--   epoch ms (see index_follow).
-- Replies {'OK', version, increment results...} (then index_follow's tail when the delta moved
--   the expiry of a session with a principal into a later epoch, or set its principal; without increment results or that
--   tail: the bare version, an integer reply, which Redis 7.0 answers cheaper than a table)
--   | {'NOTFOUND'} | {'MOVED', handle} | {'CONFLICT', version} | {'TYPE', op}
--   | {'OVERFLOW', op} | {'LIMIT', size} | {'CORRUPT', reason}. Everything is checked before
--   the first write: nothing is written unless the reply is OK.
local now = now_ms()
local state, m = meta(true)
if state ~= 'LIVE' then
  return not_live(state, m)
end

-- `stored` caches each attribute as read: its value without the version (`orig`, false when
-- absent) and the 8 bytes of its version (`vers`).
local orig, vers = {}, {}
local function stored(name)
  if orig[name] == nil then
    local raw = stored_of(name)
    if raw and #raw < VERSION_BYTES then
      return nil
    end
    orig[name] = raw and string.sub(raw, VERSION_BYTES + 1) or false
    if raw then
      vers[name] = string.sub(raw, 1, VERSION_BYTES)
    end
  end
  return orig[name]
end

local guards = tonumber(ARGV[2])
local at = 3
for _ = 1, guards do
  local kind, name, version = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  at = at + 3
  local holds
  if kind == 'V' then
    holds = m.v == tonumber(version)
  else
    local value = stored(name)
    if value == nil then
      return { 'CORRUPT', 'an attribute field without a version' }
    end
    if kind == 'A' then
      holds = value ~= false and vers[name] == version
    else
      holds = value == false
    end
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
-- false once removed); nothing is written until all of them succeeded.
local cur = {}
local size = m.z
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
  if kind == 'P' or kind == 'R' or kind == 'I' then
    local old = cur[x]
    if old == nil then
      old = stored(x)
      if old == nil then
        return { 'CORRUPT', 'an attribute field without a version' }
      end
    end
    local new
    if kind == 'P' then
      new = y
    elseif kind == 'R' then
      new = false
    else
      local n = 0
      if old then
        n = counter(old)
        if not n then
          return { 'TYPE', op }
        end
      end
      n = n + tonumber(y)
      if n > MAX_COUNTER or n < -MAX_COUNTER then
        return { 'OVERFLOW', op }
      end
      new = int(n)
      results[#results + 1] = n
    end
    size = size - (old and (#x + #old) or 0) + (new and (#x + #new) or 0)
    cur[x] = new
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
  else
    return { 'BADOP', op }
  end
end
if size > tonumber(ARGV[1]) then
  return { 'LIMIT', size }
end

local meta_changed = a ~= m.a or i ~= m.i or d ~= m.d
local before, principal_changed = expiry(m.a, m.i, m.d), p ~= m.p
m.v, m.z, m.a, m.i, m.d, m.p = m.v + 1, size, a, i, d, p
save(m, cur)
if meta_changed then
  expire_at(a, i, d, now)
end
if p and (meta_changed or principal_changed) then
  results = index_follow(results, p, before, expiry(a, i, d), principal_changed)
end
if #results == 2 then
  return results[2]
end
return results
