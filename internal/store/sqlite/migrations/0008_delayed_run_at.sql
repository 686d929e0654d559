-- Sweep: when the next delayed task is due. Only the tasks created to run
-- later than their creation are in the index now: the claim of a task that
-- was ready when created no longer rewrites a page of it (a claim wrote
-- twelve pages, one of them here).
DROP INDEX tasks_pending_run_at;
CREATE INDEX tasks_pending_run_at ON tasks (run_at)
    WHERE status = 'pending' AND run_at > created_at;
