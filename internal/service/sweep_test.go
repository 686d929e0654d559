package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A store that cannot sweep (closed here) is warned of once, not at every
// sweep: an outage would fill the log.
func TestSweepFailuresWarnedSparingly(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tw.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	svc := service.New(st, service.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	svc.RunSweeper(ctx, time.Millisecond) // about 200 sweeps, each failing
	if n := strings.Count(logs.String(), "msg=sweep"); n != 1 {
		t.Errorf("%d warnings of failed sweeps, want 1:\n%s", n, logs.String())
	}
}
