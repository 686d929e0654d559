-- Times are INTEGER unix milliseconds (UTC). Every table is STRICT.

-- tasks: seq is the rowid, so it orders tasks by insertion (FIFO within a
-- priority); id is the public key.
CREATE TABLE tasks (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    queue            TEXT    NOT NULL,
    text             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    metadata         TEXT,
    assigned_to      TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    lease_ms         INTEGER NOT NULL,
    run_at           INTEGER,
    lease_expires_at INTEGER,
    error            TEXT,
    -- result_sum is the SHA-256 of the stored result, NULL while there is
    -- none; the bytes are in result_chunks.
    result_size      INTEGER NOT NULL DEFAULT 0,
    result_sum       BLOB,
    -- completed_by is the worker that finalized the task ('' for an admin),
    -- so a retried completion can be recognized.
    completed_by     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    duration_ms      INTEGER
) STRICT;

-- Claim: one index seek per queue for the best unreserved ready tasks.
-- run_at and assigned_to are carried so that the index covers the query:
-- delayed tasks are skipped without reading their rows.
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, created_at, seq, run_at, assigned_to)
    WHERE status = 'pending' AND assigned_to IS NULL;

-- Claim: the pending tasks reserved for one worker (task.assign).
CREATE INDEX tasks_reserved ON tasks (assigned_to, priority DESC, created_at, seq, run_at)
    WHERE status = 'pending' AND assigned_to IS NOT NULL;

-- Heartbeat, unregister and system.workers: a worker's in_progress tasks.
CREATE INDEX tasks_running ON tasks (assigned_to, seq)
    WHERE status = 'in_progress';

-- Stats: each queue's oldest pending task.
CREATE INDEX tasks_pending_age ON tasks (queue, created_at)
    WHERE status = 'pending';

-- task.list in its default order.
CREATE INDEX tasks_created ON tasks (created_at, id);

-- Result bytes, in chunks of at most 1 MiB (SQLite's blob limit is below
-- the 1 GiB a result may reach, and a chunk bounds the memory of a read).
CREATE TABLE result_chunks (
    task_id TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (task_id, seq)
) STRICT;

-- task.create idempotency: a key names the task it created and when.
-- Expired keys are pruned a few at a time by later keyed creates.
CREATE TABLE idempotency_keys (
    key        TEXT    PRIMARY KEY,
    task_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Task counts per queue and status, kept by the triggers below so that
-- stats never scan the tasks.
CREATE TABLE task_counts (
    queue  TEXT    NOT NULL,
    status TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, status)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (queue, status, n) VALUES (new.queue, new.status, 1)
        ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE queue = old.queue AND status = old.status;
END;

CREATE TRIGGER tasks_count_update AFTER UPDATE OF queue, status ON tasks
    WHEN old.queue IS NOT new.queue OR old.status IS NOT new.status
BEGIN
    UPDATE task_counts SET n = n - 1 WHERE queue = old.queue AND status = old.status;
    INSERT INTO task_counts (queue, status, n) VALUES (new.queue, new.status, 1)
        ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
END;

-- workers: roles, queues and metadata are JSON text.
CREATE TABLE workers (
    id            TEXT    PRIMARY KEY,
    status        TEXT    NOT NULL,
    roles         TEXT    NOT NULL,
    queues        TEXT    NOT NULL,
    metadata      TEXT,
    registered_at INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
) STRICT;
