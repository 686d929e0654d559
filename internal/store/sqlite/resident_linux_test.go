package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestKeeperReadsEvictedPagesBack evicts a file from the page cache and
// requires one pass to bring every page of it back.
func TestKeeperReadsEvictedPagesBack(t *testing.T) {
	path := writeFile(t, "db", 4<<20)
	evict(t, path)
	k := testKeeper(t, 1<<30, path)
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(k.files[0].data); got != 4<<20 {
		t.Fatalf("mapped %d bytes, want %d", got, 4<<20)
	}
	if in, all := residentPages(t, path); in != all {
		t.Fatalf("%d of %d pages in memory after a pass, want all", in, all)
	}
}

// TestKeeperFollowsTheFileSize grows, shrinks and removes a file between
// passes: each pass maps the file as it is then, without failing.
func TestKeeperFollowsTheFileSize(t *testing.T) {
	path := writeFile(t, "db", 1<<20)
	k := testKeeper(t, 1<<30, path)
	for _, size := range []int64{1 << 20, 3 << 20, 64 << 10, 5000} {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		if err := k.pass(t.Context()); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got := int64(len(k.files[0].data)); got != size {
			t.Fatalf("file of %d bytes: mapped %d", size, got)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k.files[0].data != nil {
		t.Fatalf("removed file still mapped (%d bytes)", len(k.files[0].data))
	}
}

// TestKeeperStopsAtItsBudget maps the first files first and no more than
// the budget in all.
func TestKeeperStopsAtItsBudget(t *testing.T) {
	db, wal := writeFile(t, "db", 2<<20), writeFile(t, "db-wal", 2<<20)
	for _, c := range []struct{ budget, db, wal int }{
		{5 << 20, 2 << 20, 2 << 20},
		{3 << 20, 2 << 20, 1 << 20},
		{1 << 20, 1 << 20, 0},
	} {
		k := testKeeper(t, int64(c.budget), db, wal)
		if err := k.pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, got2 := len(k.files[0].data), len(k.files[1].data); got != c.db || got2 != c.wal {
			t.Errorf("budget %d: mapped %d and %d bytes, want %d and %d", c.budget, got, got2, c.db, c.wal)
		}
	}
}

// TestKeeperGrowMapsOnlyTheGrowth grows a file between passes: grow maps
// every page the file grew by and none of those it had before (a pass
// maps those), so that it costs what the file grew by.
func TestKeeperGrowMapsOnlyTheGrowth(t *testing.T) {
	path := writeFile(t, "db-wal", 1<<20)
	k := testKeeper(t, 1<<30, path)
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Unmap and evict what the pass mapped, so that only a pass would
	// bring it back.
	if err := unix.Madvise(k.files[0].data, unix.MADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	evict(t, path)
	appendFile(t, path, 2<<20)
	if err := k.grow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mappedBytes(t, path); got != 2<<20 {
		t.Fatalf("%d bytes mapped in memory after grow, want the %d the file grew by", got, 2<<20)
	}
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mappedBytes(t, path); got != 3<<20 {
		t.Fatalf("%d bytes mapped in memory after a pass, want all %d", got, 3<<20)
	}
}

// TestKeeperMapsAppendedPagesBeforeTheNextPass requires a running keeper
// to map the pages appended to a file well before its next whole pass:
// fresh pages left unmapped for a pass interval were the ones a reclaimer
// took.
func TestKeeperMapsAppendedPagesBeforeTheNextPass(t *testing.T) {
	path := writeFile(t, "db-wal", 1<<20)
	k := startKeeper(t.Context(), 1<<30, path)
	t.Cleanup(k.close)
	waitMapped(t, path, 1<<20)
	appendFile(t, path, 1<<20)
	waitMapped(t, path, 2<<20)
}

// waitMapped waits until size bytes of the file at path are mapped in
// memory, for half a pass interval at most.
func waitMapped(t *testing.T, path string, size int64) {
	t.Helper()
	deadline := time.Now().Add(residentInterval / 2)
	for mappedBytes(t, path) != size {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of %s mapped in memory, want %d", mappedBytes(t, path), path, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeeperSurvivesAFileCutShortMidPass cuts the file shorter between
// mapping and populating: populate fails instead of killing the process
// with SIGBUS, and the next pass maps the new size.
func TestKeeperSurvivesAFileCutShortMidPass(t *testing.T) {
	path := writeFile(t, "db", 4<<20)
	k := testKeeper(t, 1<<30, path)
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := k.files[0].populate(t.Context(), 0); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("populate past the end of the file: %v, want EFAULT", err)
	}
	if err := k.pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(k.files[0].data); got != 1<<20 {
		t.Fatalf("mapped %d bytes, want %d", got, 1<<20)
	}
}

// TestKeeperPassStopsWhenCanceled requires a pass to stop before it
// populates anything once its context has ended, so that closing a store
// does not wait for the reading of a whole large file.
func TestKeeperPassStopsWhenCanceled(t *testing.T) {
	path := writeFile(t, "db", 4<<20)
	evict(t, path)
	k := testKeeper(t, 1<<30, path)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := k.pass(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("pass after cancel: %v, want context.Canceled", err)
	}
	if in, all := residentPages(t, path); in == all {
		t.Fatalf("%d of %d pages in memory after a canceled pass, want fewer", in, all)
	}
}

// TestStoreMapsItsDatabaseUntilClosed requires an open store to map its
// database file and a closed one to have let it go; with ResidentBytes
// negative nothing is kept at all.
func TestStoreMapsItsDatabaseUntilClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !mapped(t, path); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the database file is not mapped 10 s after Open")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if mapped(t, path) {
		t.Fatal("the database file is still mapped after Close")
	}

	off := open(t, Options{ResidentBytes: -1})
	select {
	case <-off.keep.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the keeper of a store with ResidentBytes -1 runs")
	}
}

// BenchmarkKeeperPass measures a pass over a 256 MiB file already in
// memory and mapped, the keeper's cost every residentInterval at that
// size: it reports the pass's time per GiB.
func BenchmarkKeeperPass(b *testing.B) {
	const size = 256 << 20
	path := writeFile(b, "db", size)
	k := testKeeper(b, 1<<40, path)
	if err := k.pass(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := k.pass(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/1e6/float64(b.N)*(1<<30)/size, "ms/GiB")
}

// testKeeper is a keeper of paths that runs only the passes a test makes,
// its mappings released at cleanup.
func testKeeper(t testing.TB, budget int64, paths ...string) *keeper {
	k := &keeper{budget: budget}
	for _, p := range paths {
		k.files = append(k.files, mapping{path: p})
	}
	t.Cleanup(func() {
		for i := range k.files {
			_ = k.files[i].unmap()
		}
	})
	return k
}

// writeFile writes size bytes to a new file named name in t's temporary
// directory and returns its path.
func writeFile(t testing.TB, name string, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// appendFile appends size bytes to the file at path.
func appendFile(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(bytes.Repeat([]byte{0xa5}, size)); err != nil {
		t.Fatal(err)
	}
}

// evict writes the file at path to disk and drops its pages from the page
// cache. It skips the test, loudly, on a file system that keeps them (such
// as tmpfs), where there is nothing to read back.
func evict(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fsync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if in, all := residentPages(t, path); in == all {
		t.Skipf("SKIPPED: the file system of %s keeps every page in memory after FADV_DONTNEED; nothing to read back", path)
	}
}

// residentPages reports how many pages of the file at path are in the
// page cache, and how many it has.
func residentPages(t *testing.T, path string) (in, all int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(data)
	page := os.Getpagesize()
	vec := make([]byte, (len(data)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}

// mapped reports whether the process maps the file at path.
func mapped(t *testing.T, path string) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(maps)) {
		if strings.HasSuffix(strings.TrimSpace(line), " "+path) {
			return true
		}
	}
	return false
}

// mappedBytes is how many bytes of the file at path the process's
// mappings of it hold in memory (their Rss in /proc/self/smaps).
func mappedBytes(t *testing.T, path string) int64 {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	ours := false
	for line := range strings.Lines(string(smaps)) {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			ours = fields[len(fields)-1] == path
		case ours && len(fields) == 3 && fields[0] == "Rss:":
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			kib += n
		}
	}
	return kib << 10
}
