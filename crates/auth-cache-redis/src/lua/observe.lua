-- Returns `{marker, epoch}` (`KEYS[2]`, `KEYS[1]`), first setting a missing epoch to a
-- fresh random value (`ARGV[1]`): a warming compares the epoch it saw here with the one at
-- its end, and a flush meanwhile must not look like "unchanged".
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
return {redis.call('GET', KEYS[2]), epoch}
