-- Stats: when each queue's oldest ready pending task became ready, the
-- later of its creation and its run_at. Replaces the index by creation
-- time, which counted delayed tasks not due yet.
DROP INDEX tasks_pending_age;
CREATE INDEX tasks_pending_ready ON tasks (queue, max(created_at, coalesce(run_at, created_at)), created_at, run_at)
    WHERE status = 'pending';
