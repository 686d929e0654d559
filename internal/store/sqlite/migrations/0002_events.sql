-- The event log and what the sweep needs.

-- events: every change of a task or worker, appended in the transaction of
-- the change. seq is the event's ID; AUTOINCREMENT so that no ID is ever
-- issued twice, even after the sweep has trimmed the log empty. The sweep
-- trims the log from its oldest end only, so the seqs it holds are
-- contiguous. payload and metadata are JSON text, ts unix milliseconds.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    type     TEXT    NOT NULL,
    task_id  TEXT,
    payload  TEXT    NOT NULL,
    metadata TEXT    NOT NULL,
    ts       INTEGER NOT NULL
) STRICT;

-- Sweep: the in_progress tasks whose lease has expired, soonest first.
CREATE INDEX tasks_lease ON tasks (lease_expires_at)
    WHERE status = 'in_progress';

-- Sweep: when the next delayed task is due.
CREATE INDEX tasks_pending_run_at ON tasks (run_at)
    WHERE status = 'pending';

-- Sweep: the online workers silent for the longest.
CREATE INDEX workers_seen ON workers (last_seen)
    WHERE status = 'online';
