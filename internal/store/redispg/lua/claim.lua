-- claim.lua: a registered, online worker takes up to N ready tasks at
-- once: first the due tasks reserved for it, then the unreserved due tasks
-- of its queues, highest priority first, oldest first within a priority.
-- Each becomes in_progress, assigned to the worker, attempt + 1, with a
-- lease; its event task.claimed is appended, and one outbox entry names
-- them all. Before choosing, it moves the delayed tasks that have come
-- due (up to 1000) into their ready or reserved set.
--
-- KEYS[1]  event counter          KEYS[2]  event stream
-- KEYS[3]  outbox stream          KEYS[4]  the worker's hash
-- KEYS[5]  delayed set            KEYS[6]  leases set
-- KEYS[7]  the worker's reserved set
-- KEYS[8]  the worker's held set  KEYS[9]  online workers by last seen
-- KEYS[10..] the ready sets of the queues to take from
-- All keys, and those built from the prefixes below, share one hash tag.
--
-- ARGV[1]  now, unix ms
-- ARGV[2]  most tasks to take
-- ARGV[3]  worker id
-- ARGV[4]  task.claimed payload, "@TASK@" standing for the task id
-- ARGV[5]  task.claimed metadata
-- ARGV[6]  task key prefix        ARGV[7]  ready key prefix
-- ARGV[8]  reserved key prefix
-- ARGV[9]  pub/sub channel (gets "e:SEQ" when tasks were claimed, SEQ the
--          last event id issued)
--
-- Returns: -1 when the worker is unknown or offline; else an array: the
-- last event id issued (0 when none), then per claimed task its hash as
-- HGETALL returns it. While the event counter does not exist (Redis lost
-- its data) it writes nothing and fails with an error reply starting
-- NOEVSEQ, as apply.lua does. A chosen task without its hash fails the
-- call with an error reply before any task is written.

local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local worker = ARGV[3]

if redis.call('HGET', KEYS[4], 'st') ~= 'online' then
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOEVSEQ the event counter is missing until it is set again from PostgreSQL')
end
redis.call('HSET', KEYS[4], 'seen', ARGV[1])
redis.call('HINCRBY', KEYS[4], 'ver', 1)
redis.call('ZADD', KEYS[9], ARGV[1], worker)

-- score orders by priority (higher first), then creation (older first).
local function score(pr, cr)
  return (100 - tonumber(pr)) * 1e13 + tonumber(cr)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local h = redis.call('HMGET', ARGV[6] .. id, 'st', 'q', 'pr', 'cr', 'asg')
  redis.call('ZREM', KEYS[5], id)
  if h[1] == 'pending' then
    if h[5] and h[5] ~= '' then
      redis.call('ZADD', ARGV[8] .. h[5], score(h[3], h[4]), id)
    else
      redis.call('ZADD', ARGV[7] .. h[2], score(h[3], h[4]), id)
    end
  end
end

-- Choose first, write after: nothing is written for the tasks until every
-- one chosen is known to be whole.
local picked, taken = {}, {}
local first = redis.call('ZRANGE', KEYS[7], 0, want - 1)
for _, id in ipairs(first) do
  picked[#picked + 1] = id
end
local need = want - #picked
if need > 0 then
  -- The best `need` of each queue, then the best `need` of them all:
  -- lowest score first, then lowest id, as ZRANGE orders one queue.
  local cands = {}
  for i = 10, #KEYS do
    local r = redis.call('ZRANGE', KEYS[i], 0, need - 1, 'WITHSCORES')
    for j = 1, #r, 2 do
      cands[#cands + 1] = {id = r[j], score = tonumber(r[j + 1]), key = i}
    end
  end
  table.sort(cands, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.id < b.id
  end)
  for j = 1, math.min(need, #cands) do
    local c = cands[j]
    picked[#picked + 1] = c.id
    taken[c.key] = taken[c.key] or {}
    table.insert(taken[c.key], c.id)
  end
end

local out = {0}
if #picked == 0 then
  return out
end
local leaseMs = {}
for k, id in ipairs(picked) do
  leaseMs[k] = tonumber(redis.call('HGET', ARGV[6] .. id, 'lms'))
  if not leaseMs[k] then
    return redis.error_reply('ERR claim.lua: ready task ' .. id .. ' has no lease length')
  end
end

if #first > 0 then
  redis.call('ZREM', KEYS[7], unpack(first))
end
for i = 10, #KEYS do
  if taken[i] then
    redis.call('ZREM', KEYS[i], unpack(taken[i]))
  end
end
local last = redis.call('INCRBY', KEYS[1], #picked)
local seq = last - #picked
local leases = {}
for k, id in ipairs(picked) do
  local tk = ARGV[6] .. id
  local lease = now + leaseMs[k]
  redis.call('HINCRBY', tk, 'att', 1)
  redis.call('HINCRBY', tk, 'ver', 1)
  redis.call('HSET', tk, 'st', 'in_progress', 'asg', worker, 'lease', lease, 'up', ARGV[1])
  leases[#leases + 1] = lease
  leases[#leases + 1] = id
  seq = seq + 1
  local payload = string.gsub(ARGV[4], '@TASK@', id)
  redis.call('XADD', KEYS[2], seq .. '-0', 'type', 'task.claimed', 'task', id,
    'payload', payload, 'meta', ARGV[5], 'ts', ARGV[1])
  out[#out + 1] = redis.call('HGETALL', tk)
end
out[1] = last
redis.call('SADD', KEYS[8], unpack(picked))
redis.call('ZADD', KEYS[6], unpack(leases))
redis.call('XADD', KEYS[3], '*', 'id', table.concat(picked, ','))
redis.call('PUBLISH', ARGV[9], 'e:' .. last)
return out
