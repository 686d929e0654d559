-- raise.lua: raises a counter to a floor, or sets a missing counter to
-- it; a counter at or above the floor stays.
--
-- KEYS[1]  the counter
-- ARGV[1]  the floor
--
-- Returns: the counter's value afterwards.

local cur = redis.call('GET', KEYS[1])
local floor = tonumber(ARGV[1])
if not cur or tonumber(cur) < floor then
  redis.call('SET', KEYS[1], floor)
  return floor
end
return tonumber(cur)
