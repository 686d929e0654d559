package sqlite

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// TestWALStartsOverUnderSteadyLoad keeps the writer busy without a pause,
// as a loaded server does, and requires the WAL to start over again and
// again instead of growing for as long as the load lasts: a checkpoint
// beside a writer that never pauses cannot start it over by itself.
func TestWALStartsOverUnderSteadyLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, Options{WALRestartFrames: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := walSequence(t, path)
	var stop atomic.Bool
	var created atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for !stop.Load() {
				tk := task(int(created.Add(1)))
				if _, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for walSequence(t, path) < first+3 {
		if time.Now().After(deadline) {
			info, _ := os.Stat(path + "-wal")
			t.Fatalf("the WAL started over %d times in 30 s of steady load (%d tasks created); it is %d bytes",
				walSequence(t, path)-first, created.Load(), info.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// walSequence reads the checkpoint sequence number of the WAL header of
// the database at path, which SQLite increments each time the WAL starts
// over.
func walSequence(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := make([]byte, 32)
	if _, err := f.ReadAt(header, 0); err != nil {
		return 0 // no frame written yet
	}
	return binary.BigEndian.Uint32(header[12:16])
}
