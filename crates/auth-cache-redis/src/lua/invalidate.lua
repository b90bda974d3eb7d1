-- Makes every instance refuse revocation checks until the list is warmed again: sets the
-- epoch (`KEYS[1]`) to a fresh random value (`ARGV[1]`) and deletes the marker (`KEYS[2]`),
-- atomically.
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
