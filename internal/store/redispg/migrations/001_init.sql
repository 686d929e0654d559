-- The durable record of taskwire's distributed mode. Times are unix
-- milliseconds, as Redis keeps them.

-- tasks holds every task; version counts its changes, and a write only
-- replaces an older version. A deleted task stays as a tombstone (its text,
-- metadata and result gone) so that no late write brings it back.
CREATE TABLE tasks (
    id               text PRIMARY KEY,
    queue            text NOT NULL,
    text             text NOT NULL,
    status           text NOT NULL,
    priority         integer NOT NULL,
    metadata         text,
    assigned_to      text,
    attempt          integer NOT NULL,
    max_attempts     integer NOT NULL,
    lease_ms         bigint NOT NULL,
    run_at           bigint,
    lease_expires_at bigint,
    error            text,
    result_size      bigint NOT NULL DEFAULT 0,
    result_sum       text,
    result_attempt   integer,
    completed_by     text,
    created_at       bigint NOT NULL,
    updated_at       bigint NOT NULL,
    completed_at     bigint,
    duration_ms      bigint,
    version          bigint NOT NULL,
    deleted          boolean NOT NULL DEFAULT false,
    -- written_at is when PostgreSQL last wrote the row (its own clock):
    -- the reconciler leaves rows just written alone, creates in flight.
    written_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_created ON tasks (created_at, id) WHERE NOT deleted;
CREATE INDEX tasks_unfinished ON tasks (id) WHERE NOT deleted AND status IN ('pending', 'in_progress');
CREATE INDEX tasks_queue_status ON tasks (queue, status) WHERE NOT deleted;

-- idempotency_keys maps a create's key to the task it made.
CREATE TABLE idempotency_keys (
    key        text PRIMARY KEY,
    task_id    text NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);

-- staged_results is the outcome of a completion, written before the Redis
-- transition under the task's attempt; results holds its bytes in chunks.
CREATE TABLE staged_results (
    task_id      text NOT NULL,
    attempt      integer NOT NULL,
    status       text NOT NULL,
    error        text,
    size         bigint NOT NULL,
    sum          text,
    completed_by text,
    completed_at bigint NOT NULL,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE results (
    task_id text NOT NULL,
    attempt integer NOT NULL,
    seq     integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (task_id, attempt, seq)
);
