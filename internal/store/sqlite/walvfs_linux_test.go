package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// walBufferOf returns the WAL buffer of s's writer, failing the test when
// the writer's WAL is not buffered.
func walBufferOf(t *testing.T, s *Store) *walBuffer {
	t.Helper()
	walVFSFilesMu.Lock()
	defer walVFSFilesMu.Unlock()
	b := walVFSBuffers[s.w.path]
	if b == nil || b.pFile == 0 {
		t.Fatalf("the writer's WAL of %s is not buffered", s.w.path)
	}
	return b
}

// Each commit reaches the WAL file in one write, however many frames it
// has, and nothing of it is left in the buffer once it is answered.
func TestWALWritesOnePerCommit(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1)) // the WAL exists from the first commit on
	b := walBufferOf(t, s)
	frames, writes := b.frames, b.writes
	const commits = 50
	for n := 2; n < 2+commits; n++ {
		create(t, s, task(n)) // one at a time: a commit each
		if len(b.buf) != 0 {
			t.Fatalf("after create %d: %d bytes of the WAL still buffered", n, len(b.buf))
		}
	}
	frames, writes = b.frames-frames, b.writes-writes
	// A lone create changes the task row, its index entries and its event:
	// several pages, each a frame of two writes without the buffer.
	if frames < 3*commits {
		t.Errorf("%d commits wrote %d frames, want at least %d", commits, frames, 3*commits)
	}
	if writes > commits {
		t.Errorf("%d commits of %d frames took %d writes, want at most one each", commits, frames, writes)
	}
	for n := 2; n < 2+commits; n++ {
		if _, err := s.GetTask(t.Context(), task(n).ID); err != nil {
			t.Errorf("GetTask(%s) from a read connection: %v", task(n).ID, err)
		}
	}
}

// A write of the buffer that failed where SQLite could not be told (a
// barrier) fails the commit and every write after it, and readiness.
func TestWALWriteFailureFailsTheStore(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1))
	b := walBufferOf(t, s)
	errDisk := errors.New("write WAL: disk gone")
	walVFSFilesMu.Lock()
	b.err = errDisk
	walVFSFilesMu.Unlock()
	for n := 2; n <= 3; n++ {
		_, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: task(n), Now: task(n).CreatedAt})
		var unavailable *store.UnavailableError
		if !errors.As(err, &unavailable) || !errors.Is(err, errDisk) {
			t.Errorf("create %d after the failed write: %v, want unavailable wrapping %v", n, err, errDisk)
		}
	}
	if err := s.Ping(t.Context()); !errors.Is(err, errDisk) {
		t.Errorf("Ping after the failed write: %v, want %v", err, errDisk)
	}
}

// A write of the buffer that fails where SQLite is told (a full disk at
// a commit) fails that commit alone: the commit is rolled back, and the
// next one, with room again, commits and counts as any other.
func TestWALWriteFailureFailsTheCommit(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1))
	b := walBufferOf(t, s)
	walVFSFilesMu.Lock()
	b.failWrites = true
	walVFSFilesMu.Unlock()
	_, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: task(2), Now: task(2).CreatedAt})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("create with the WAL's writes failing: %v, want unavailable", err)
	}
	walVFSFilesMu.Lock()
	b.failWrites = false
	walVFSFilesMu.Unlock()
	create(t, s, task(3))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping once the writes succeed again: %v", err)
	}
	if _, err := s.GetTask(t.Context(), task(2).ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask of the create that failed: %v, want not found", err)
	}
	stats, err := s.Stats(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Queues) != 1 || stats.Queues[0].ByStatus[taskwire.StatusPending] != 2 {
		t.Errorf("pending tasks counted: %+v, want 2", stats.Queues)
	}
}

// A write of the buffer that fails while a batch runs (the flush a read
// makes of frames a cache spill wrote) may take frames of the batch's
// earlier ops with it, though SQLite was told only of the call that
// failed: the batch is rolled back and answered unavailable, op by op,
// and the next batch commits as any other.
func TestWALWriteLostFailsTheBatch(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1))
	b := walBufferOf(t, s)
	release := holdWriter(t, s)
	before := goCreate(t.Context(), s, 2)
	waitQueued(s, 1)
	failed := make(chan error, 1)
	go func() {
		failed <- s.w.do(t.Context(), func(*writeTx) error {
			walVFSFilesMu.Lock()
			b.lost = errors.New("write WAL: disk full")
			walVFSFilesMu.Unlock()
			return errors.New("disk full") // what SQLite answered the call
		})
	}()
	waitQueued(s, 2)
	release()
	if err := <-before; !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("the create in the batch that lost a write: %v, want unavailable", err)
	}
	if err := <-failed; err == nil {
		t.Error("the op whose call failed succeeded")
	}
	if _, err := s.GetTask(t.Context(), task(2).ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask of the batch that lost a write: %v, want not found", err)
	}
	create(t, s, task(3))
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the batch was rolled back: %v", err)
	}
}
