-- task_counts is kept by the writer, which adds up the changes of each
-- batch and writes them with one statement per queue and status, instead
-- of these triggers running two statements per change of a task.
DROP TRIGGER tasks_count_insert;
DROP TRIGGER tasks_count_delete;
DROP TRIGGER tasks_count_update;
