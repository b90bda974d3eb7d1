-- Sets a denylist entry (`KEYS[1]`) until `ARGV[1]` (unix ms), or to the later of that and
-- its current expiry: an entry is never shortened. An `until` in the past with no entry
-- stores nothing (`PEXPIREAT` in the past deletes).
local untl = tonumber(ARGV[1])
local cur = redis.call('PEXPIRETIME', KEYS[1])
if cur > untl then untl = cur end
redis.call('SET', KEYS[1], '1')
redis.call('PEXPIREAT', KEYS[1], string.format('%d', untl))
return 1
