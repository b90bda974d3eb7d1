-- An ephemeral entry is the string `{expires_at}:{value}` (unix ms, then the value's bytes).
-- `entry_parts` gives its expiry (a number), the expiry as stored (text) and the value;
-- an entry of another shape is an error.
local function entry_parts(entry)
  local sep = string.find(entry, ':', 1, true)
  local stored = sep and string.sub(entry, 1, sep - 1)
  local at = stored and string.match(stored, '^%-?%d+$') and tonumber(stored)
  if not at then error('corrupt ephemeral entry') end
  return at, stored, string.sub(entry, sep + 1)
end
-- Stores a new entry `{ARGV[2]}:{value}` in KEYS[1] for ARGV[3] ms (none when that TTL is
-- not positive: the entry would be dead already).
local function store_new(value)
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[1], ARGV[2] .. ':' .. value, 'PX', ARGV[3])
  else
    redis.call('DEL', KEYS[1])
  end
end
