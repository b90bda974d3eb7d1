-- LockoutPolicy::after_failure on the hash KEYS[1]. ARGV: now, threshold, base_lock,
-- max_lock, failure_window, memory (ms), reserve ('1' or '0'). Keeps the result for
-- LockoutPolicy::retention and returns {counted, failures, last_failure, level, has_lock,
-- locked_until} (last_failure -1 when none). With reserve, a key locked at `now` is left as
-- it is and returned with counted 0 (AttemptCounter::reserve_attempt).
-- Needs int.lua before it; retention.lua goes where the marker line is.
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local max_lock = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local memory = tonumber(ARGV[6])
local reserve = ARGV[7] == '1'
--@retention
local h = redis.call('HMGET', KEYS[1], 'failures', 'last_failure', 'level', 'locked_until')
local failures = tonumber(h[1]) or 0
local lf = tonumber(h[2])
local level = tonumber(h[3]) or 0
local lu = tonumber(h[4])
if reserve and lu ~= nil and lu > now then
  return {0, failures, lf or -1, level, 1, lu}
end
if lf == nil or now - lf > window then failures = 0 end
if lu == nil or now - lu > memory then level = 0 end
failures = failures + 1
lf = now
if failures >= threshold then
  if level < 4294967295 then level = level + 1 end
  local shift = level - 1
  if shift < 0 then shift = 0 end
  if shift > 40 then shift = 40 end
  local lock = base * (2 ^ shift)
  if lock > max_lock then lock = max_lock end
  lu = now + lock
  failures = 0
end
save(failures, lf, level, lu)
if lu == nil then
  return {1, failures, lf, level, 0, 0}
end
return {1, failures, lf, level, 1, lu}
