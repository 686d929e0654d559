package service

import (
	"sync"
	"time"
)

// rates counts claims and completions per second over the last minute,
// for system.metrics, and in total, for Prometheus. unsharedClaimed and
// unsharedCompleted are those not yet added to a store.RateSharer.
type rates struct {
	mu                                 sync.Mutex
	claimed, completed                 window
	claimedN, completedN               uint64
	unsharedClaimed, unsharedCompleted uint64
}

// window is a ring of per-second counts over the last 60 seconds.
type window struct {
	counts [60]uint64
	secs   [60]int64
}

func (w *window) add(now time.Time, n int) {
	sec := now.Unix()
	i := sec % 60
	if w.secs[i] != sec {
		w.secs[i], w.counts[i] = sec, 0
	}
	w.counts[i] += uint64(n)
}

// perSecond is the mean rate over the 60 seconds before now.
func (w *window) perSecond(now time.Time) float64 {
	sec := now.Unix()
	var sum uint64
	for i := range w.counts {
		if sec-w.secs[i] < 60 {
			sum += w.counts[i]
		}
	}
	return float64(sum) / 60
}

func newRates() *rates { return &rates{} }

func (r *rates) addClaimed(now time.Time, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.claimed.add(now, n)
	r.claimedN += uint64(n)
	r.unsharedClaimed += uint64(n)
}

func (r *rates) addCompleted(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.completed.add(now, 1)
	r.completedN++
	r.unsharedCompleted++
}

// takeUnshared returns the counts not yet shared and resets them.
func (r *rates) takeUnshared() (claimed, completed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	claimed, completed = r.unsharedClaimed, r.unsharedCompleted
	r.unsharedClaimed, r.unsharedCompleted = 0, 0
	return claimed, completed
}

// unshare gives back counts that could not be shared, for the next try.
func (r *rates) unshare(claimed, completed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unsharedClaimed += claimed
	r.unsharedCompleted += completed
}

func (r *rates) perSecond(now time.Time) (claimed, completed float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimed.perSecond(now), r.completed.perSecond(now)
}

func (r *rates) totals() (claimed, completed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimedN, r.completedN
}
