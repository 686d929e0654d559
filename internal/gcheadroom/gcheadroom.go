// Package gcheadroom keeps Go's garbage collector from running often while
// the heap is small. By default (GOGC=100) a collection starts when the heap
// has grown by as much as survived the last one: a server whose live heap is
// a few MiB collects many times a second under load, and spends a tenth of
// its CPU there. After each collection, Keep sets the GC percent so that the
// next one starts when the heap has grown by the larger of the live heap and
// a fixed headroom: small heaps get the headroom, large ones (a big result
// in flight) keep the default, so peak memory grows by at most the headroom.
package gcheadroom

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Default is the headroom taskwire serve keeps, and the benchmarks of its
// server with it: 32 MiB.
const Default = 32 << 20

// maxPercent bounds the GC percent Keep sets, for a live heap of almost
// nothing (just after start).
const maxPercent = 5000

// Keep adjusts the GC percent after every collection, as the package says,
// until stop is called; stop restores the percent in force before. headroom
// is in bytes.
func Keep(headroom uint64) (stop func()) {
	t := &tuner{headroom: headroom, before: debug.SetGCPercent(100)}
	t.adjust()
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(t.before)
	}
}

type tuner struct {
	headroom uint64
	before   int

	mu      sync.Mutex // held while the percent changes
	stopped bool
}

// arm has adjust run after the next collection: a cleanup of an object
// nothing refers to runs once a collection has found it unreachable.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// sentinel is allocated on its own (not combined with other tiny objects,
// which would keep it alive with them): it holds a pointer.
type sentinel struct{ _ *byte }

// adjust sets the GC percent for the live heap the last collection left,
// unless t was stopped; it reports whether it did.
func (t *tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	debug.SetGCPercent(Percent(liveHeap(), t.headroom))
	return true
}

// Percent is the GC percent that lets a heap of live bytes grow by
// max(live, headroom) before the next collection: at least 100, at most
// maxPercent.
func Percent(live, headroom uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := math.Ceil(100 * float64(headroom) / float64(live))
	return int(min(max(p, 100), maxPercent))
}

// liveHeap is the heap the last collection found live, in bytes.
func liveHeap() uint64 { return readMetric("/gc/heap/live:bytes") }

// readMetric reads the runtime metric name, of kind uint64 (0 when the
// runtime has none such).
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
