-- Sets a user's "not before" mark (`KEYS[1]`) to `ARGV[1]` (unix ms) until `ARGV[2]`,
-- keeping the later mark and the later expiry of a live entry: the mark never moves back.
local nb = tonumber(ARGV[1])
local untl = tonumber(ARGV[2])
local old = tonumber(redis.call('GET', KEYS[1]))
if old then
  if old > nb then nb = old end
  local cur = redis.call('PEXPIRETIME', KEYS[1])
  if cur > untl then untl = cur end
end
redis.call('SET', KEYS[1], string.format('%d', nb))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', untl))
return 1
