-- EphemeralStore::claim_once on KEYS[1]. ARGV: now, expires_at (unix ms), TTL (ms:
-- expires_at - now). An entry live at now (its expiry after now) refuses: 0. Otherwise
-- the key is marked with an empty value until expires_at: 1. Needs ephemeral.lua before it.
local now = tonumber(ARGV[1])
local current = redis.call('GET', KEYS[1])
if current then
  local at = entry_parts(current)
  if at > now then return 0 end
end
store_new('')
return 1
