-- events: the writer gives each event its seq, one more than the newest
-- issued, instead of AUTOINCREMENT, which rewrote the page of
-- sqlite_sequence with every commit that appended events (a claim wrote
-- eight pages, that one among them). The newest seq issued is the largest
-- of the log and of event_ids.issued, which holds it where the log cannot:
-- the sweep raises it before trimming the log's newest event, and an open
-- after an unclean stop when it skips ids.
CREATE TABLE events_by_seq (
    seq      INTEGER PRIMARY KEY,
    type     TEXT    NOT NULL,
    task_id  TEXT,
    payload  TEXT    NOT NULL,
    metadata TEXT    NOT NULL,
    ts       INTEGER NOT NULL
) STRICT;
INSERT INTO events_by_seq SELECT seq, type, task_id, payload, metadata, ts FROM events;
CREATE TABLE event_ids (
    one    INTEGER PRIMARY KEY CHECK (one = 1),
    issued INTEGER NOT NULL
) STRICT;
INSERT INTO event_ids VALUES (1, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0));
DROP TABLE events;
ALTER TABLE events_by_seq RENAME TO events;
CREATE INDEX events_task ON events (task_id, seq);
