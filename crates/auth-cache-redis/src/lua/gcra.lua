-- auth_domain::policy::gcra on the TAT in KEYS[1]. ARGV: now (unix ms), limit, window (ms).
-- Returns {allowed, remaining, reset_after_secs, retry_after_secs}; an allowed request
-- stores the new TAT, expiring when it is reached. Needs int.lua before it.
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit < 1 then limit = 1 end
local window = tonumber(ARGV[3])
if window < 1 then window = 1 end
local interval = idiv(window, limit)
if interval < 1 then interval = 1 end
local tat = now
local stored = tonumber(redis.call('GET', KEYS[1]))
if stored and stored > now then tat = stored end
local span = interval * limit
local new_tat = tat + interval
local allow_at = new_tat - span
if allow_at > now then
  local retry = ceil_secs(allow_at - now)
  if retry < 1 then retry = 1 end
  return {0, 0, ceil_secs(tat - now), retry}
end
local remaining = idiv(span - (new_tat - now), interval)
if remaining < 0 then remaining = 0 end
redis.call('SET', KEYS[1], int(new_tat), 'PX', int(new_tat - now))
return {1, remaining, ceil_secs(new_tat - now), 0}
