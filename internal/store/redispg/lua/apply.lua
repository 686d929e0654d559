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
-- Every key named in ARGV[1] carries the hash tag of KEYS[1..3].
--
-- ARGV[1]  the transitions, a JSON array; each (absent members mean none):
--   checks: [{k, v}]         hash k must have ver v ("" = k must not exist)
--   put:    [{k, f}]         replace hash k by the fields f [name, value, ...]
--   del:    [k]              delete key k
--   bump:   [k]              HINCRBY k ver 1 when hash k exists
--   zadd:   [{k, s, m}]      ZADD k s m
--   zrem:   [{k, m}]         ZREM k m
--   sadd:   [{k, m}]         SADD k m
--   srem:   [{k, m}]         SREM k m
--   events: [{type, task, payload, meta, ts}]   appended in this order
--   outbox: [taskId]         task ids whose new state PostgreSQL lacks
--   touch:  [{k, s, z, m}]   worker hash k, when online: seen = s, ver + 1,
--                            and ZADD z s m (a sign of life)
--   ready:  true             a task became claimable
-- ARGV[2]  pub/sub channel: gets, once per run, "r:SEQ" when a task
--          became ready, else "e:SEQ" when events were appended, SEQ the
--          last event id issued
--
-- Returns: {SEQ, R1, R2, ...}: SEQ the last event id issued (0 when
-- none), Ri the outcome of the i-th transition: 1 committed; 0 when a
-- key's version differs from its check (nothing written: the caller reads
-- again and retries); -1 when it has events while the event counter does
-- not exist (Redis lost its data and the store has not set it again from
-- PostgreSQL's mark): nothing written, so that no event id is issued
-- twice.

local docs = cjson.decode(ARGV[1])
local noseq = redis.call('EXISTS', KEYS[1]) == 0
local seq, ready, emitted = 0, false, false
local out = {0}

-- apply commits one transition and returns its outcome.
local function apply(doc)
  for _, c in ipairs(doc.checks or {}) do
    local v = redis.call('HGET', c.k, 'ver')
    if (v or '') ~= c.v then
      return 0
    end
  end
  local events = doc.events or {}
  if #events > 0 and noseq then
    return -1
  end

  for _, k in ipairs(doc.del or {}) do
    redis.call('DEL', k)
  end
  for _, p in ipairs(doc.put or {}) do
    redis.call('DEL', p.k)
    redis.call('HSET', p.k, unpack(p.f))
  end
  for _, k in ipairs(doc.bump or {}) do
    if redis.call('EXISTS', k) == 1 then
      redis.call('HINCRBY', k, 'ver', 1)
    end
  end
  for _, z in ipairs(doc.zrem or {}) do
    redis.call('ZREM', z.k, z.m)
  end
  for _, z in ipairs(doc.zadd or {}) do
    redis.call('ZADD', z.k, z.s, z.m)
  end
  for _, s in ipairs(doc.srem or {}) do
    redis.call('SREM', s.k, s.m)
  end
  for _, s in ipairs(doc.sadd or {}) do
    redis.call('SADD', s.k, s.m)
  end

  for _, w in ipairs(doc.touch or {}) do
    if redis.call('HGET', w.k, 'st') == 'online' then
      redis.call('HSET', w.k, 'seen', w.s)
      redis.call('HINCRBY', w.k, 'ver', 1)
      redis.call('ZADD', w.z, w.s, w.m)
    end
  end

  for _, ev in ipairs(events) do
    seq = redis.call('INCR', KEYS[1])
    redis.call('XADD', KEYS[2], seq .. '-0', 'type', ev.type, 'task', ev.task,
      'payload', ev.payload, 'meta', ev.meta, 'ts', ev.ts)
    emitted = true
  end
  for _, id in ipairs(doc.outbox or {}) do
    redis.call('XADD', KEYS[3], '*', 'id', id)
  end
  if doc.ready then
    ready = true
  end
  return 1
end

for i, doc in ipairs(docs) do
  out[i + 1] = apply(doc)
end

if seq == 0 then
  seq = tonumber(redis.call('GET', KEYS[1]) or '0')
end
out[1] = seq
if ready then
  redis.call('PUBLISH', ARGV[2], 'r:' .. seq)
elseif emitted then
  redis.call('PUBLISH', ARGV[2], 'e:' .. seq)
end
return out
