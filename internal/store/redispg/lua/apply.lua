-- apply.lua: commits state transitions, each decided by a caller from
-- state it read, each only if none of that state has changed since
-- (optimistic concurrency: every task and worker hash carries a version,
-- field "ver", that every change increments). The transitions are those
-- of concurrent callers gathered into one run; each commits or fails on
-- its own, in the order given, and everything one writes, events
-- included, is written at once or not at all.
--
-- KEYS[1]  event counter: the last event id issued
-- KEYS[2]  event stream
-- KEYS[3]  outbox stream
-- Every key named in ARGV carries the hash tag of KEYS[1..3].
--
-- ARGV[1]  pub/sub channel: gets, once per run, "r:SEQ" when a task
--          became ready, else "e:SEQ" when events were appended, SEQ the
--          last event id issued
-- ARGV[2]  the number of transitions that follow, each:
--   N E      N the number of arguments of the transition after these two,
--            E "1" when it appends events, else "0"
--   then its operations, checks first, each an opcode and its operands:
--   c k v            hash k must have ver v ("" = k must not exist)
--   d k              delete key k
--   p k n f...       replace hash k by the n strings f: name, value, ...
--   m k ms           hash k = {ver: 1}, expiring in ms milliseconds (a
--                    mark that a check of k "must not exist" fails on)
--   b k              HINCRBY k ver 1 when hash k exists
--   zr k m           ZREM k m
--   za k s m         ZADD k s m
--   sr k m           SREM k m
--   sa k m           SADD k m
--   t k s z m        worker hash k, when online: seen = s, ver + 1, and
--                    ZADD z s m (a sign of life)
--   e type task payload meta ts   append an event
--   o id             the task whose new state PostgreSQL lacks: the run
--                    appends one outbox entry naming all such tasks
--   r                a task became claimable
--
-- Returns: {SEQ, R1, R2, ...}: SEQ the last event id issued (0 when
-- none), Ri the outcome of the i-th transition: 1 committed; 0 when a
-- key's version differs from its check (nothing written: the caller reads
-- again and retries); -1 when it has events while the event counter does
-- not exist (Redis lost its data and the store has not set it again from
-- PostgreSQL's mark): nothing written, so that no event id is issued
-- twice.

local A = ARGV
local noseq = redis.call('EXISTS', KEYS[1]) == 0
local seq, ready, emitted = 0, false, false
local out, outbox = {0}, {}

-- apply commits the transition whose operations are A[i..last] and
-- returns its outcome.
local function apply(i, last, events)
  while i <= last and A[i] == 'c' do
    local v = redis.call('HGET', A[i + 1], 'ver')
    if (v or '') ~= A[i + 2] then
      return 0
    end
    i = i + 3
  end
  if events and noseq then
    return -1
  end
  while i <= last do
    local op = A[i]
    if op == 'd' then
      redis.call('DEL', A[i + 1])
      i = i + 2
    elseif op == 'p' then
      local n = tonumber(A[i + 2])
      redis.call('DEL', A[i + 1])
      redis.call('HSET', A[i + 1], unpack(A, i + 3, i + 2 + n))
      i = i + 3 + n
    elseif op == 'm' then
      redis.call('HSET', A[i + 1], 'ver', '1')
      redis.call('PEXPIRE', A[i + 1], A[i + 2])
      i = i + 3
    elseif op == 'b' then
      if redis.call('EXISTS', A[i + 1]) == 1 then
        redis.call('HINCRBY', A[i + 1], 'ver', 1)
      end
      i = i + 2
    elseif op == 'zr' then
      redis.call('ZREM', A[i + 1], A[i + 2])
      i = i + 3
    elseif op == 'za' then
      redis.call('ZADD', A[i + 1], A[i + 2], A[i + 3])
      i = i + 4
    elseif op == 'sr' then
      redis.call('SREM', A[i + 1], A[i + 2])
      i = i + 3
    elseif op == 'sa' then
      redis.call('SADD', A[i + 1], A[i + 2])
      i = i + 3
    elseif op == 't' then
      if redis.call('HGET', A[i + 1], 'st') == 'online' then
        redis.call('HSET', A[i + 1], 'seen', A[i + 2])
        redis.call('HINCRBY', A[i + 1], 'ver', 1)
        redis.call('ZADD', A[i + 3], A[i + 2], A[i + 4])
      end
      i = i + 5
    elseif op == 'e' then
      seq = redis.call('INCR', KEYS[1])
      redis.call('XADD', KEYS[2], seq .. '-0', 'type', A[i + 1], 'task', A[i + 2],
        'payload', A[i + 3], 'meta', A[i + 4], 'ts', A[i + 5])
      emitted = true
      i = i + 6
    elseif op == 'o' then
      outbox[#outbox + 1] = A[i + 1]
      i = i + 2
    elseif op == 'r' then
      ready = true
      i = i + 1
    else
      -- Not an operation of this script: the arguments are not of its
      -- form; stop the run.
      return redis.error_reply('ERR apply.lua: unknown operation ' .. tostring(op))
    end
  end
  return 1
end

-- appendOutbox appends the outbox entry of the transitions committed.
local function appendOutbox()
  if #outbox > 0 then
    redis.call('XADD', KEYS[3], '*', 'id', table.concat(outbox, ','))
  end
end

local i = 3
for t = 1, tonumber(A[2]) do
  local n, events = tonumber(A[i]), A[i + 1] == '1'
  local r = apply(i + 2, i + 1 + n, events)
  if type(r) == 'table' then
    appendOutbox()
    return r
  end
  out[t + 1] = r
  i = i + 2 + n
end

appendOutbox()
if seq == 0 then
  seq = tonumber(redis.call('GET', KEYS[1]) or '0')
end
out[1] = seq
if ready then
  redis.call('PUBLISH', A[1], 'r:' .. seq)
elseif emitted then
  redis.call('PUBLISH', A[1], 'e:' .. seq)
end
return out
