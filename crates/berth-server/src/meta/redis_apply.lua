-- Applies one change to a repository's rows (MetaStore::apply), as one
-- script so that it is atomic without WATCH (see redis_store.rs).
--
-- KEYS: 1 tags, 2 manifests, 3 referrers, 4 blob counts, 5 pull counts,
--       6 last pulls, 7 the repository list, 8 the index.json version,
--       9 tag times, 10 the store's generation, 11 the repositories'
--       revisions.
-- ARGV: 1 "1" for a replace, 2 the repository, 3 the version, then how
--       many manifests are removed, put, tags removed and set (4 to 7),
--       8 now (seconds since the epoch: the time of the tags set), then
--       the removed digests; each put manifest as its digest, its
--       JSON, its subject ("" for none), how many blobs it references and
--       those blobs (distinct); the removed tags; the set (tag, digest)
--       pairs.
-- Returns nil, or the digest of a recorded manifest that does not decode
-- (nothing written then).

local replace = ARGV[1] == '1'
local now = ARGV[8]
local at = 9
local function next_arg()
  at = at + 1
  return ARGV[at - 1]
end
local function take(n, width)
  local out = {}
  for i = 1, tonumber(n) do
    if width == 1 then
      out[i] = next_arg()
    else
      out[i] = { next_arg(), next_arg() }
    end
  end
  return out
end
local removes = take(ARGV[4], 1)
-- What a manifest counts and links: { refs = distinct blobs, subject = a
-- digest or nil }. The new ones come so from the caller, which spares
-- decoding their JSON here.
local puts = {}
for i = 1, tonumber(ARGV[5]) do
  local digest, json, subject = next_arg(), next_arg(), next_arg()
  local refs = take(next_arg(), 1)
  if subject == '' then
    subject = nil
  end
  puts[i] = { digest = digest, json = json, row = { refs = refs, subject = subject } }
end
local untags = take(ARGV[6], 1)
local settags = take(ARGV[7], 2)

-- A recorded manifest's JSON as what it counts and links; nil if it does
-- not decode.
local function row_of(json)
  local ok, m = pcall(cjson.decode, json)
  if not ok or type(m) ~= 'table' then
    return nil
  end
  local refs, seen = {}, {}
  local function one(b)
    if type(b) == 'string' and not seen[b] then
      seen[b] = true
      refs[#refs + 1] = b
    end
  end
  one(m.config)
  for _, list in ipairs({ m.layers or false, m.children or false }) do
    if type(list) == 'table' then
      for _, b in ipairs(list) do
        one(b)
      end
    end
  end
  local subject = nil
  if type(m.subject) == 'string' then
    subject = m.subject
  end
  return { refs = refs, subject = subject }
end

-- Every read that can fail comes before the first write: the manifests
-- this change removes or overwrites, as they are now (nothing is left of
-- them after a replace); false when absent.
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
  rows[d] = row_of(json)
  return rows[d] ~= nil
end
for _, d in ipairs(removes) do
  if not read(d) then
    return d
  end
end
for _, p in ipairs(puts) do
  if not read(p.digest) then
    return p.digest
  end
end
-- What a replace finds before it, to keep the time of a tag it sets to
-- the same digest: tag -> { digest, time (or nil) }.
local before = {}
if replace then
  local times = {}
  local flat = redis.call('HGETALL', KEYS[9])
  for i = 1, #flat, 2 do
    times[flat[i]] = flat[i + 1]
  end
  flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    before[flat[i]] = { digest = flat[i + 1], time = times[flat[i]] }
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

-- Blob counts, read when first touched, written at the end.
local counts = {}
local function adjust(row, delta)
  for _, b in ipairs(row.refs) do
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
end
-- Forgets what the manifest `d` recorded now counts and links, and
-- records `row` (or false) as what `d` is from here on.
local function unlink(d, row)
  local old = rows[d]
  rows[d] = row
  if old then
    adjust(old, -1)
    if old.subject then
      redis.call('ZREM', KEYS[3], old.subject .. '\0' .. d)
    end
  end
end

if replace then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[9])
end
for _, d in ipairs(removes) do
  unlink(d, false)
  redis.call('HDEL', KEYS[2], d)
  -- A manifest deleted takes its pull history and its tags along.
  redis.call('HDEL', KEYS[5], d)
  redis.call('HDEL', KEYS[6], d)
  for _, t in ipairs(tagged[d] or {}) do
    redis.call('HDEL', KEYS[1], t)
    redis.call('HDEL', KEYS[9], t)
  end
end
for _, p in ipairs(puts) do
  unlink(p.digest, p.row)
  redis.call('HSET', KEYS[2], p.digest, p.json)
  adjust(p.row, 1)
  if p.row.subject then
    redis.call('ZADD', KEYS[3], 0, p.row.subject .. '\0' .. p.digest)
  end
end
for _, t in ipairs(untags) do
  redis.call('HDEL', KEYS[1], t)
  redis.call('HDEL', KEYS[9], t)
end
for _, t in ipairs(settags) do
  redis.call('HSET', KEYS[1], t[1], t[2])
  local time = now
  local was = before[t[1]]
  if was and was.digest == t[2] then
    time = was.time
  end
  if time then
    redis.call('HSET', KEYS[9], t[1], time)
  else
    redis.call('HDEL', KEYS[9], t[1])
  end
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
redis.call('INCR', KEYS[10])
redis.call('HINCRBY', KEYS[11], ARGV[2], 1)
return false
