-- Sets the marker (`KEYS[2]`) if the epoch (`KEYS[1]`) is still `ARGV[1]`, the one seen
-- before storage was read; returns whether it did.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], '1')
return 1
