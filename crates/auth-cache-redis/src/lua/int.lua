-- Exact integer helpers shared by the scripts (Lua 5.1 numbers are doubles, exact for
-- integers below 2^53; `idiv` corrects any rounding of the float division).
local function idiv(a, b)
  local q = math.floor(a / b)
  while q * b > a do q = q - 1 end
  while (q + 1) * b <= a do q = q + 1 end
  return q
end
local function ceil_secs(ms)
  if ms < 0 then ms = 0 end
  return idiv(ms + 999, 1000)
end
local function int(x) return string.format('%d', x) end
