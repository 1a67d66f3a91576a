-- Counts pulls of a manifest (MetaStore::record_pulls): its count and last
-- pull, the repository's total, and the store's generation, together.
--
-- KEYS: 1 pull counts, 2 last pulls (the repository's hashes), 3 the
--       repositories' pull totals, 4 the store's generation.
-- ARGV: 1 the manifest's digest, 2 how many pulls, 3 the last one's time,
--       4 the repository.

redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if redis.call('HEXISTS', KEYS[3], ARGV[4]) == 1 then
  redis.call('HINCRBY', KEYS[3], ARGV[4], ARGV[2])
else
  -- No total yet (a new repository, or one an older Berth counted pulls
  -- of): the pulls its manifests counted so far, this one included.
  local total = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[1])) do
    total = total + (tonumber(n) or 0)
  end
  redis.call('HSET', KEYS[3], ARGV[4], string.format('%d', total))
end
redis.call('INCR', KEYS[4])
return false
