package service

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idSource makes task ids: "t-" + a ULID, monotonic within a process so
// that ids sort in creation order even within one millisecond.
type idSource struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDSource() *idSource {
	return &idSource{entropy: ulid.Monotonic(rand.Reader, 0)}
}

func (g *idSource) taskID(now time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return "t-" + ulid.MustNew(ulid.Timestamp(now), g.entropy).String()
}
