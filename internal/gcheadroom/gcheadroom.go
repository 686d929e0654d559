// Package gcheadroom keeps Go's garbage collector from running often while
// the heap is small. By default (GOGC=100) a collection starts when the heap
// has grown by as much as survived the last one: a server whose live heap is
// a few MiB collects many times a second under load, and spends a tenth of
// its CPU there. After each collection, Keep sets the GC percent so that the
// next one starts when the heap has grown by about a fixed headroom, or by
// what Go's default allows when that is more: small heaps get the
// headroom, large ones (a big result in flight) keep the default, so peak
// memory grows by at most about the headroom.
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

// heapMinimum is the runtime's floor of the heap goal at GOGC=100; it
// scales with the GC percent.
const heapMinimum = 4 << 20

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
	live := liveHeap()
	debug.SetGCPercent(Percent(live, live+rootBytes(), t.headroom))
	return true
}

// Percent is the GC percent that lets a heap of live bytes grow by about
// headroom before the next collection, or by as much as Go's default
// (100) would let it when that is more. The runtime's goal for the next
// collection is live + scan*percent/100, scan being the bytes a
// collection scans (the live heap, goroutine stacks and globals), and at
// least heapMinimum*percent/100: the percent keeps both at or under
// live + headroom.
func Percent(live, scan, headroom uint64) int {
	p := 100 * float64(live+headroom) / heapMinimum
	if scan > 0 {
		p = min(p, 100*float64(headroom)/float64(scan))
	}
	return int(max(math.Floor(p), 100))
}

// liveHeap is the heap the last collection found live, in bytes.
func liveHeap() uint64 { return readMetric("/gc/heap/live:bytes") }

// rootBytes is what a collection scans besides the heap: goroutine stacks
// and globals, in bytes.
func rootBytes() uint64 {
	return readMetric("/gc/scan/stack:bytes") + readMetric("/gc/scan/globals:bytes")
}

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
