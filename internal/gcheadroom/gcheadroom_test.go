package gcheadroom

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                 string
		live, scan, headroom uint64
		want                 int
	}{
		// Nothing live yet: the runtime's floor (4 MiB at 100 %) decides.
		{"nothing live", 0, 0, 32 * mib, 800},
		// A small heap: the floor still decides, at live + headroom.
		{"small heap", 1 * mib, 2 * mib, 32 * mib, 825},
		// Past the floor: the scanned bytes decide.
		{"scan decides", 8 * mib, 10 * mib, 32 * mib, 320},
		// As much scanned as the headroom: Go's default.
		{"default", 32 * mib, 32 * mib, 32 * mib, 100},
		{"large heap", 256 * mib, 260 * mib, 32 * mib, 100},
	} {
		if got := Percent(tt.live, tt.scan, tt.headroom); got != tt.want {
			t.Errorf("%s: Percent(%d MiB live, %d MiB scanned, %d MiB headroom) = %d, want %d",
				tt.name, tt.live/mib, tt.scan/mib, tt.headroom/mib, got, tt.want)
		}
	}
}

// TestKeep: after each collection the runtime's goal for the next one is
// at most the live heap plus the headroom while the heap is small (a GC
// percent above 100), the percent is back to 100 once a large heap is
// live, and stop restores the percent set before.
func TestKeep(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	const headroom = 64 * mib
	stop := Keep(headroom)

	waitPercent(t, func(p int) bool { return p > 100 })
	live, goal := liveHeap(), readMetric("/gc/heap/goal:bytes")
	if goal > live+headroom+mib || goal < live+headroom/2 {
		t.Errorf("heap goal %d MiB with %d MiB live; want about live + the %d MiB headroom", goal/mib, live/mib, headroom/mib)
	}

	big := make([]*[mib]byte, 0, 640)
	for range cap(big) {
		big = append(big, new([mib]byte))
	}
	if p := waitPercent(t, func(p int) bool { return p == 100 }); p != 100 {
		t.Errorf("GC percent with %d MiB live = %d, want 100", len(big), p)
	}
	runtime.KeepAlive(big)

	stop()
	if p := gcPercent(); p != 150 {
		t.Errorf("GC percent after stop = %d, want 150, the one before", p)
	}
}

// waitPercent collects until the GC percent satisfies ok, or fails the
// test after 10 s; it returns the percent.
func waitPercent(t *testing.T, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		p := gcPercent()
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent still %d 10 s after collections began", p)
		}
		time.Sleep(10 * time.Millisecond) // the cleanup runs after the collection
	}
}

func gcPercent() int { return int(readMetric("/gc/gogc:percent")) }
