-- Applies one change to a repository's rows (MetaStore::apply), as one
-- script so that it is atomic without WATCH (see redis_store.rs).
--
-- KEYS: 1 tags, 2 manifests, 3 referrers, 4 blob counts, 5 pull counts,
--       6 last pulls, 7 the repository list, 8 the index.json version.
-- ARGV: 1 "1" for a replace, 2 the repository, 3 the version, then how
--       many manifests are removed, put, tags removed and set (4 to 7),
--       then the removed digests, the put (digest, JSON) pairs, the removed
--       tags and the set (tag, digest) pairs.
-- Returns nil, or the digest of a recorded manifest that does not decode
-- (nothing written then).

local replace = ARGV[1] == '1'
local at = 8
local function take(n, width)
  local out = {}
  for i = 1, tonumber(n) do
    if width == 1 then
      out[i] = ARGV[at]
    else
      out[i] = { ARGV[at], ARGV[at + 1] }
    end
    at = at + width
  end
  return out
end
local removes = take(ARGV[4], 1)
local puts = take(ARGV[5], 2)
local untags = take(ARGV[6], 1)
local settags = take(ARGV[7], 2)

local function decode(json)
  local ok, m = pcall(cjson.decode, json)
  if ok and type(m) == 'table' then
    return m
  end
  return nil
end

-- Every read that can fail comes before the first write.
local new = {}
for i, p in ipairs(puts) do
  new[i] = decode(p[2])
  if not new[i] then
    return p[1]
  end
end
-- The manifests this change removes or overwrites, as they are now
-- (nothing is left of them after a replace); false when absent.
local rows = {}
local function read(d)
  if replace or rows[d] ~= nil then
    return true
  end
  local json = redis.call('HGET', KEYS[2], d)
  if not json then
    rows[d] = false
    return true
  end
  rows[d] = decode(json)
  return rows[d] ~= nil
end
for _, d in ipairs(removes) do
  if not read(d) then
    return d
  end
end
for _, p in ipairs(puts) do
  if not read(p[1]) then
    return p[1]
  end
end
-- Tags by the digest they point at, for the manifests removed.
local tagged = {}
if not replace and #removes > 0 then
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    local list = tagged[flat[i + 1]] or {}
    list[#list + 1] = flat[i]
    tagged[flat[i + 1]] = list
  end
end

-- Blob counts, read when first touched.
local counts = {}
local function adjust(m, delta)
  local seen = {}
  local function one(b)
    if type(b) ~= 'string' or seen[b] then
      return
    end
    seen[b] = true
    local n = counts[b]
    if n == nil then
      n = 0
      if not replace then
        n = tonumber(redis.call('HGET', KEYS[4], b)) or 0
      end
    end
    n = n + delta
    if n < 0 then
      n = 0
    end
    counts[b] = n
  end
  one(m.config)
  if type(m.layers) == 'table' then
    for _, b in ipairs(m.layers) do
      one(b)
    end
  end
  if type(m.children) == 'table' then
    for _, b in ipairs(m.children) do
      one(b)
    end
  end
end
local function subject(m)
  if type(m.subject) == 'string' then
    return m.subject
  end
  return nil
end

-- Forgets what the manifest `d` recorded now counts and links, and
-- records `m` (or false) as what `d` is from here on.
local function unlink(d, m)
  local old = rows[d]
  rows[d] = m
  if old then
    adjust(old, -1)
    local s = subject(old)
    if s then
      redis.call('ZREM', KEYS[3], s .. '\0' .. d)
    end
  end
end

if replace then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
end
for _, d in ipairs(removes) do
  unlink(d, false)
  redis.call('HDEL', KEYS[2], d)
  -- A manifest deleted takes its pull history and its tags along.
  redis.call('HDEL', KEYS[5], d)
  redis.call('HDEL', KEYS[6], d)
  for _, t in ipairs(tagged[d] or {}) do
    redis.call('HDEL', KEYS[1], t)
  end
end
for i, p in ipairs(puts) do
  local d, m = p[1], new[i]
  unlink(d, m)
  redis.call('HSET', KEYS[2], d, p[2])
  adjust(m, 1)
  local s = subject(m)
  if s then
    redis.call('ZADD', KEYS[3], 0, s .. '\0' .. d)
  end
end
for _, t in ipairs(untags) do
  redis.call('HDEL', KEYS[1], t)
end
for _, t in ipairs(settags) do
  redis.call('HSET', KEYS[1], t[1], t[2])
end
for b, n in pairs(counts) do
  if n > 0 then
    redis.call('HSET', KEYS[4], b, string.format('%d', n))
  else
    redis.call('HDEL', KEYS[4], b)
  end
end
redis.call('ZADD', KEYS[7], 0, ARGV[2])
redis.call('SET', KEYS[8], ARGV[3])
return false
