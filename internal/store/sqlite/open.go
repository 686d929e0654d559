// Package sqlite is taskwire's embedded storage backend: one process, one
// SQLite file, nothing else to install. It implements store.Store.
//
// Every write goes through one writer goroutine that commits the operations
// queued behind each other in one transaction (group commit), so concurrent
// callers share the cost of one fsync; reads use a pool of their own
// connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Options tune a Store; the zero value is ready to use.
type Options struct {
	// MaxBatch is the most operations committed in one transaction.
	// Default 512.
	MaxBatch int
	// ReadConns is the size of the pool of read connections. Default
	// GOMAXPROCS, at least 4.
	ReadConns int
	// WALRestartFrames is how many frames (database pages) the WAL may
	// hold before the store has it start over even under steady load
	// (README, Checkpoints). Default 32768, 128 MiB of 4 KiB pages.
	WALRestartFrames int
	// ResidentBytes is how much of the database file and its WAL the
	// store keeps in memory (see keeper); negative keeps nothing. Default
	// a quarter of the machine's memory.
	ResidentBytes int64
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if o.WALRestartFrames <= 0 {
		o.WALRestartFrames = walRestartFrames
	}
	if o.ResidentBytes == 0 {
		o.ResidentBytes = physicalMemory() / 4
	}
	return o
}

// writerCacheKiB is the page cache of the writer's connection: 16 MiB
// instead of SQLite's 2 MiB, so that the pages a write touches (the
// index leaves of the tasks it changes, scattered by priority and age)
// are in memory rather than read back from the file one pread at a time.
const writerCacheKiB = 16 << 10

// Store is the SQLite implementation of store.Store.
type Store struct {
	w    *writer
	read *sql.DB
	ckpt *checkpointer
	keep *keeper
	lock *dbLock
}

// Open opens the database file at path, creating it and its directory when
// missing, brings its schema up to date and starts the writer. The caller
// must Close the Store.
//
// One Store at a time has a database open: while another has it open, in
// this process or another, Open fails with an error that wraps ErrInUse
// and names the lock file (the path with -lock appended, beside the file
// symbolic links lead to). The lock goes with Close, or with the process.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: must not contain ? or #", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	lock, err := lockDatabase(path)
	if err != nil {
		return nil, err
	}
	s, err := openLocked(ctx, path, opts)
	if err != nil {
		_ = lock.release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// openLocked is Open once the lock is taken.
func openLocked(ctx context.Context, path string, opts Options) (*Store, error) {
	unclean := leftWAL(path)
	wdb, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	conn, err := wdb.Conn(ctx)
	if err == nil {
		err = migrate(ctx, conn)
	}
	if err == nil && unclean {
		err = skipEventIDs(ctx, conn)
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0") // see checkpointer
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL") // see walSyncer
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size=%d", -writerCacheKiB))
	}
	// The file SQLite opened, symbolic links resolved: its WAL is beside it.
	var file string
	if err == nil {
		err = conn.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file)
	}
	var lastEvent int64
	if err == nil {
		lastEvent, err = lastEventSeq(ctx, conn)
	}
	var counts *taskCounts
	if err == nil {
		counts, err = loadCounts(ctx, conn)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		conn.Close()
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(opts.ReadConns)
	read.SetMaxIdleConns(opts.ReadConns)

	w := newWriter(context.WithoutCancel(ctx), wdb, conn, file, opts.MaxBatch, counts)
	ckpt, err := startCheckpointer(context.WithoutCancel(ctx), path, file, w, opts.WALRestartFrames)
	if err != nil {
		conn.Close()
		wdb.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.lastEvent.Store(lastEvent)
	go w.run()
	keep := startKeeper(context.WithoutCancel(ctx), opts.ResidentBytes, file, file+"-wal")
	return &Store{w: w, read: read, ckpt: ckpt, keep: keep}, nil
}

// dsn returns the data source name of the database file with the pragmas
// every connection gets:
//
//   - journal_mode=WAL: readers never block the writer nor each other, and
//     a commit appends to one file instead of rewriting pages twice.
//   - synchronous=FULL: in WAL mode NORMAL survives a process crash but may
//     lose the last commits on power loss; FULL fsyncs the WAL at every
//     commit, so an acknowledged change survives both (SPEC 7.1). The
//     writer's connection alone is switched to NORMAL after migrating,
//     because its walSyncer fsyncs the WAL before answering, off the
//     writer's path; the migrations and checkpoints run at FULL.
//   - busy_timeout: a reader that meets a checkpoint or WAL recovery waits
//     instead of failing; the single writer never contends with itself.
//   - journal_size_limit: the WAL file shrinks back after a checkpoint that
//     followed a large result, instead of keeping its peak size.
//   - temp_store=MEMORY: the statement journal of each operation's SAVEPOINT
//     stays in memory instead of a temporary file (a write syscall per
//     journalled page was a fifth of the CPU time of a batch).
//   - foreign_keys stays off: the schema declares none, DeleteTask removes
//     a task's chunks and keys itself.
//
// Read connections are also query_only, so a bug cannot write outside the
// writer.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_size_limit(268435456)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	if readOnly {
		q.Set("_query_only", "1")
	}
	return path + "?" + q.Encode()
}

// Ping reports whether the database answers, the Store is open and no
// sync of its WAL has failed.
func (s *Store) Ping(ctx context.Context) error {
	if s.w.isClosed() {
		return errClosed
	}
	if err := s.w.sync.failure(); err != nil {
		return err
	}
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close finishes the operations already submitted, stops the writer,
// closes the database and lets go of its lock. Operations after Close
// fail.
func (s *Store) Close() error {
	stopped, err := s.w.stop()
	if !stopped {
		return nil
	}
	s.keep.close()
	return errors.Join(err, s.ckpt.close(), s.read.Close(), s.lock.release())
}
