package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"time"
)

// checkpointInterval is how often the checkpointer copies the WAL back
// into the database file.
const checkpointInterval = 250 * time.Millisecond

// walRestartFrames is how many frames the WAL may hold before it is
// started over (see checkpointer): 128 MiB of 4 KiB pages, half the
// journal_size_limit, so that the WAL file is reused as it is, never cut
// back. Each start over pauses the writer (3-15 ms measured), and the
// claims that arrive meanwhile wait: at 2,500 claims/s a 32 MiB WAL
// started over four to six times in four seconds, a 128 MiB one two or
// three times. The checkpointer makes up to restartPasses passes before
// the WAL starts over, fewer when one finds at most walRestartLag new
// frames.
const (
	walRestartFrames = 32768
	walRestartLag    = 64
	restartPasses    = 4
)

// checkpointer moves WAL checkpoints off the writer: SQLite's automatic
// checkpoint runs inside the commit that crosses its threshold and fsyncs
// the database file there, stalling every caller of that batch (the tail of
// claim latency). With wal_autocheckpoint=0 on the writer, a connection of
// its own runs a PASSIVE checkpoint every checkpointInterval, beside the
// writer and the readers, never waiting for either.
//
// A checkpoint beside a busy writer never lets the WAL start over: SQLite
// does that only when a write transaction begins with every frame copied,
// and the writer appends frames while the checkpoint copies. Under steady
// load the WAL would grow without bound (70 MB/s at 2,500 claims/s here),
// every frame extending the file. So when the WAL holds more than
// walRestartFrames, the checkpointer copies again until a pass finds few
// frames appended during the one before, flushes what it copied
// (prepareRestart), then asks the writer (restartWAL) to run one more
// PASSIVE checkpoint between two batches: it copies the few frames left,
// and the next batch starts the WAL over. The writer pauses for that copy
// and its two fsyncs (the few new frames of the WAL before, the few pages
// copied into the database file after), and its next commit for one more:
// SQLite syncs the new WAL header when the WAL starts over.
type checkpointer struct {
	db *sql.DB
	// file is the database file, which prepareRestart flushes.
	file string
	w    *writer
	// restartFrames is the walRestartFrames of this store.
	restartFrames int
	stop          context.CancelFunc
	done          chan struct{}
}

// startCheckpointer starts the checkpointer of the database at path, file
// being the file SQLite resolved it to.
func startCheckpointer(ctx context.Context, path, file string, w *writer, restartFrames int) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	ctx, stop := context.WithCancel(ctx)
	c := &checkpointer{db: db, file: file, w: w, restartFrames: restartFrames, stop: stop, done: make(chan struct{})}
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
			c.checkpoint(ctx)
		}
	}
}

// checkpoint copies the WAL into the database file, and when the WAL has
// grown past restartFrames, prepares its start over (see checkpointer):
// each pass copies the frames the writer appended during the one before
// (a pass cannot copy those of the writer's open transaction), fewer each
// time, and after at most restartPasses passes the writer is asked to copy
// the rest.
func (c *checkpointer) checkpoint(ctx context.Context) {
	before := -1 // the frames the previous pass found
	for range restartPasses {
		var busy, frames, copied int
		err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err != nil || frames < c.restartFrames {
			// A failed checkpoint leaves the WAL longer until the next one.
			return
		}
		if frames-copied <= walRestartLag && before >= 0 && frames-before <= walRestartLag {
			break
		}
		before = frames
	}
	if c.prepareRestart(ctx) == nil {
		c.w.restartWAL.Store(true)
	}
}

// prepareRestart leaves the writer little to do when it starts the WAL
// over. A pass that cannot copy every frame (the writer appends while it
// copies) does not flush the database file; the writer's checkpoint, the
// one that copies the last frames, would flush everything the passes
// before it copied (6-17 ms of the writer's time measured here, every
// claim waiting). So the checkpointer flushes the database file itself,
// copies the frames appended meanwhile (a pass flushes the WAL before it
// copies) and flushes the file again. A flush that fails leaves the WAL
// as it is; SQLite's own flush of the file reports the failure too.
func (c *checkpointer) prepareRestart(ctx context.Context) error {
	if err := syncFile(c.file); err != nil {
		return err
	}
	if _, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return err
	}
	return syncFile(c.file)
}

// syncFile flushes the file at path to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(fdatasync(f), f.Close())
}

// close stops the checkpointer; the last connection to close checkpoints
// the whole WAL.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
