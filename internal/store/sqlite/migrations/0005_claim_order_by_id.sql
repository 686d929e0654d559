-- Claim order breaks a tie of priority and creation time by task id, as
-- task.list and the distributed store do, rather than by insertion order:
-- tasks created in the same millisecond by concurrent calls may be stored
-- in another order than their ids.
DROP INDEX tasks_ready;
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, created_at, id, run_at, assigned_to)
    WHERE status = 'pending' AND assigned_to IS NULL;

DROP INDEX tasks_reserved;
CREATE INDEX tasks_reserved ON tasks (assigned_to, priority DESC, created_at, id, run_at)
    WHERE status = 'pending' AND assigned_to IS NOT NULL;
