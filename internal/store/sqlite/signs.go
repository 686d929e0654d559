package sqlite

import (
	"maps"
	"sync"
	"time"
)

// touchWriteEvery is how far a worker's sign of life must have moved on
// since the writer last wrote its LastSeen for a batch to write it again.
const touchWriteEvery = time.Second

// signsOfLife holds the workers' latest signs of life (claims, updates,
// completions) that the database does not hold yet. Writing a worker's
// LastSeen at each of its calls rewrote two pages per batch, its row and
// its entry in workers_seen, two of the twelve pages of a lone claim; now
// a batch writes it only when it has moved on by touchWriteEvery since
// last written, and keeps the newer ones here. The sweep writes them all
// before it looks for silent workers and ListWorkers reads them over the
// database's, so LastSeen is exact wherever it is read; a crash can lose
// them, which sets a worker's LastSeen back by at most touchWriteEvery
// (SPEC 7.1 lets signs of life live in memory).
type signsOfLife struct {
	// written is the LastSeen (ms) the writer last committed, per worker;
	// the writer's alone.
	written map[string]int64
	mu      sync.Mutex
	// unwritten are the committed signs of life (ms) newer than written.
	unwritten map[string]int64
}

func newSignsOfLife() *signsOfLife {
	return &signsOfLife{written: map[string]int64{}, unwritten: map[string]int64{}}
}

// due reports whether a sign of life of worker id at (ms) is to be written
// (the writer's side).
func (s *signsOfLife) due(id string, at int64) bool {
	return at-s.written[id] >= touchWriteEvery.Milliseconds()
}

// committed records the outcome of a committed batch: the signs of life
// it wrote and those it kept for later (the writer's side).
func (s *signsOfLife) committed(wrote, kept []touch) {
	for _, t := range wrote {
		s.written[t.id] = max(s.written[t.id], t.at)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range wrote {
		if s.unwritten[t.id] <= t.at {
			delete(s.unwritten, t.id)
		}
	}
	for _, t := range kept {
		s.unwritten[t.id] = max(s.unwritten[t.id], t.at)
	}
}

// pending returns a copy of the signs of life not written yet.
func (s *signsOfLife) pending() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.unwritten)
}

// lastSeen returns worker id's LastSeen: the later of stored, read from the
// database, and its sign of life not written yet.
func (s *signsOfLife) lastSeen(id string, stored time.Time) time.Time {
	s.mu.Lock()
	at, ok := s.unwritten[id]
	s.mu.Unlock()
	if seen := time.UnixMilli(at).UTC(); ok && seen.After(stored) {
		return seen
	}
	return stored
}
