-- heartbeat.lua: records that a worker is alive and renews the lease of
-- each of its in_progress tasks to now + the task's lease length. It
-- appends no event; one outbox entry names the renewed tasks.
--
-- KEYS[1]  the worker's hash      KEYS[2]  the worker's held set
-- KEYS[3]  leases set             KEYS[4]  online workers by last seen
-- KEYS[5]  outbox stream
-- Task keys are built from ARGV[3] and share the hash tag of KEYS.
--
-- ARGV[1]  now, unix ms           ARGV[2]  worker id
-- ARGV[3]  task key prefix
--
-- Returns: -1 unknown worker, 0 offline worker (nothing changed), 1 alive.

local st = redis.call('HGET', KEYS[1], 'st')
if not st then
  return -1
end
if st ~= 'online' then
  return 0
end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[2])
local renewed = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local tk = ARGV[3] .. id
  local h = redis.call('HMGET', tk, 'st', 'lms')
  if h[1] == 'in_progress' then
    local lease = now + tonumber(h[2])
    redis.call('HSET', tk, 'lease', lease)
    redis.call('HINCRBY', tk, 'ver', 1)
    redis.call('ZADD', KEYS[3], lease, id)
    renewed[#renewed + 1] = id
  end
end
if #renewed > 0 then
  redis.call('XADD', KEYS[5], '*', 'id', table.concat(renewed, ','))
end
return 1
