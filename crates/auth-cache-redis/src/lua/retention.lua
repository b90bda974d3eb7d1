-- retention(lu) = LockoutPolicy::retention in ms, and save() of an attempt hash with that
-- retention. Needs `now`, `window` and `memory` in scope, and int.lua before it.
local function retention(lu)
  local keep = window
  if lu ~= nil then
    local left = lu - now + memory
    if left > keep then keep = left end
  end
  if keep < 1000 then keep = 1000 end
  return keep
end
local function save(failures, lf, level, lu)
  redis.call('HSET', KEYS[1], 'failures', int(failures), 'level', int(level))
  if lf ~= nil then
    redis.call('HSET', KEYS[1], 'last_failure', int(lf))
  else
    redis.call('HDEL', KEYS[1], 'last_failure')
  end
  if lu ~= nil then
    redis.call('HSET', KEYS[1], 'locked_until', int(lu))
  else
    redis.call('HDEL', KEYS[1], 'locked_until')
  end
  redis.call('PEXPIRE', KEYS[1], int(retention(lu)))
end
