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
		live, headroom uint64
		want           int
	}{
		{0, 64 * mib, maxPercent},       // nothing live yet
		{1 * mib, 64 * mib, maxPercent}, // 6400 %, bounded
		{8 * mib, 64 * mib, 800},        // grows by the headroom
		{64 * mib, 64 * mib, 100},       // as much as live: the default
		{256 * mib, 64 * mib, 100},      // a large heap keeps the default
		{3 * mib, 10 * mib, 334},        // rounded up
	} {
		if got := Percent(tt.live, tt.headroom); got != tt.want {
			t.Errorf("Percent(%d MiB live, %d MiB headroom) = %d, want %d", tt.live/mib, tt.headroom/mib, got, tt.want)
		}
	}
}

// TestKeep: after each collection the GC percent is the one Percent gives
// for the heap found live: raised while the heap is small, back to 100
// once a large heap is live; stop restores the percent set before.
func TestKeep(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	const headroom = 512 * mib
	stop := Keep(headroom)

	small := waitPercent(t, func(p int) bool { return p > 100 })
	if want := Percent(liveHeap(), headroom); small != want {
		t.Errorf("GC percent with a small heap = %d, want %d (Percent for %d bytes live)", small, want, liveHeap())
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
