-- counters keeps high-water marks of Redis counters, so that a Redis that
-- lost its data never issues an event id again: the reconciler raises the
-- event counter above the last mark it saved.
CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
