package sqlite

import (
	"path/filepath"
	"strconv"
	"testing"
)

// The newest event id, which the writer keeps in memory, is read back from
// the file at open: after a restart, resuming after it is not refused as
// an id never issued, and it is not issued again.
func TestLastEventIDAfterReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, task(1))
	create(t, s, task(2))
	last, err := s.LastEventID(t.Context())
	if err != nil || last == "" {
		t.Fatalf("LastEventID = %q, %v; want an id", last, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.LastEventID(t.Context()); err != nil || got != last {
		t.Errorf("LastEventID after reopen = %q, %v; want %q", got, err, last)
	}
	if evs, err := s.ReadEvents(t.Context(), last, 10); err != nil || len(evs) != 0 {
		t.Errorf("ReadEvents after %s = %d events, %v; want none, no error", last, len(evs), err)
	}
	create(t, s, task(3))
	evs, err := s.ReadEvents(t.Context(), last, 10)
	if err != nil || len(evs) != 1 || seqOf(t, evs[0].ID) <= seqOf(t, last) {
		t.Errorf("ReadEvents after %s = %v, %v; want one event with a newer id", last, evs, err)
	}
}

func seqOf(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
