-- unsettled_creates lists the creates whose outcome was unknown when their
-- caller got an error (Redis answered neither the transition nor the
-- settling of its outcome): their rows stay, and whoever would restore
-- such a task from its row settles the create first.
CREATE TABLE unsettled_creates (
    task_id text PRIMARY KEY
);
