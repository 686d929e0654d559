-- TaskEvents: the events of one task in log order, found through this
-- index rather than by reading the whole log.
CREATE INDEX events_task ON events (task_id, seq);
