-- LockoutPolicy::after_success_lifting on the hash KEYS[1]. ARGV: now, failure_window,
-- memory, lifted (ms; -1 for none). A missing key stays missing; a state that becomes the
-- default is deleted. Needs int.lua before it; retention.lua goes where the marker line is.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local memory = tonumber(ARGV[3])
local lifted = tonumber(ARGV[4])
--@retention
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'level', 'locked_until')
local level = tonumber(h[1]) or 0
local lu = tonumber(h[2])
if lifted >= 0 and lu == lifted then
  lu = nil
  if level > 0 then level = level - 1 end
end
if level == 0 and lu == nil then
  redis.call('DEL', KEYS[1])
  return 1
end
save(0, nil, level, lu)
return 1
