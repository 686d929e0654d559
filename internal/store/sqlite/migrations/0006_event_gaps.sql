-- The runs of event seqs skipped when a database left without a clean
-- close is opened (see skipEventIDs): seqs after .. after + size were
-- never issued. Trimming the log to its newest events counts across them.
CREATE TABLE event_gaps (
    after INTEGER PRIMARY KEY,
    size  INTEGER NOT NULL
);
