-- settle.lua: settles a create whose transition may or may not have
-- committed (its reply was lost, or a retry of it found the task there):
-- either the task exists, its create committed, or the create is fenced
-- off for good, so that its transition, should it still arrive, commits
-- nothing (the create's transition checks that the fence does not exist).
--
-- KEYS[1]  the task hash
-- KEYS[2]  the create's fence, a hash
-- ARGV[1]  how long the fence lasts, in milliseconds: longer than any
--          transition stays in flight
--
-- Returns: 1 when the task exists (the create committed); 0 when it does
-- not (the fence is set: it never will by that transition).

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
redis.call('HSET', KEYS[2], 'ver', '1')
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 0
