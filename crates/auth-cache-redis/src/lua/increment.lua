-- EphemeralStore::increment on KEYS[1]. ARGV: now, expires_at (unix ms), TTL (ms:
-- expires_at - now). A counter live at now goes up by one and keeps its expiry (stored and
-- TTL); otherwise a new counter starts at 1 until expires_at. Returns the count. A live
-- entry that is not a counter is an error. Needs ephemeral.lua before it.
local now = tonumber(ARGV[1])
local current = redis.call('GET', KEYS[1])
if current then
  local at, stored, value = entry_parts(current)
  if at > now then
    if not string.match(value, '^%d+$') then
      error('the ephemeral entry to increment is not a counter')
    end
    local count = tonumber(value) + 1
    redis.call('SET', KEYS[1], stored .. ':' .. string.format('%d', count), 'KEEPTTL')
    return count
  end
end
store_new('1')
return 1
