-- Toggles a repository in a user's list (MetaStore::toggle_user_repo), as
-- one script so that the list, the star count and the generation change
-- together.
--
-- KEYS: 1 the user's list (a set), 2 the star counts (a hash), 3 the
--       store's generation.
-- ARGV: 1 the repository, 2 "1" if the list counts stars.
-- Returns 1 if the repository is in the list now, else 0.

local listed = 1
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
  listed = 0
else
  redis.call('SADD', KEYS[1], ARGV[1])
end
if ARGV[2] == '1' then
  local delta = -1
  if listed == 1 then
    delta = 1
  end
  if redis.call('HINCRBY', KEYS[2], ARGV[1], delta) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[1])
  end
end
redis.call('INCR', KEYS[3])
return listed
