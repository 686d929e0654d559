package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointInterval is how often the checkpointer copies the WAL back
// into the database file.
const checkpointInterval = 250 * time.Millisecond

// checkpointer moves WAL checkpoints off the writer: SQLite's automatic
// checkpoint runs inside the commit that crosses its threshold and fsyncs
// the database file there, stalling every caller of that batch (the tail of
// claim latency). With wal_autocheckpoint=0 on the writer, a connection of
// its own runs a PASSIVE checkpoint every checkpointInterval, beside the
// writer and the readers, never waiting for either.
type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	ctx, stop := context.WithCancel(ctx)
	c := &checkpointer{db: db, stop: stop, done: make(chan struct{})}
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// A failed checkpoint leaves the WAL longer until the next one.
			_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the checkpointer; the last connection to close checkpoints
// the whole WAL.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
