-- raise.lua: raises a counter to a floor; a counter at or above it stays.
--
-- KEYS[1]  the counter
-- ARGV[1]  the floor
--
-- Returns: the counter's value afterwards.

local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then
  redis.call('SET', KEYS[1], floor)
  return floor
end
return cur
