package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// The newest event id, which the writer keeps in memory, is read back from
// the file at open: after a restart, resuming after it is not refused as
// an id never issued, and it is not issued again.
func TestLastEventIDAfterReopen(t *testing.T) {
	t.Parallel()
	s, path := openAt(t, Options{})
	create(t, s, task(1))
	create(t, s, task(2))
	last, err := s.LastEventID(t.Context())
	if err != nil || last == "" {
		t.Fatalf("LastEventID = %q, %v; want an id", last, err)
	}
	s = reopen(t, s, path)
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

// A database left by a process that did not close it (its WAL still
// there) opens with its event ids moved eventIDGap ahead, so that an id a
// power cut took back is never issued again; a cleanly closed one goes on
// where it stopped.
func TestEventIDsSkipAfterUncleanStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "taskwire.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, task(1))
	last := seqOf(t, lastEventID(t, s))
	left := leftBehind(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("WAL after a clean close: %v, want none", err)
	}

	for _, tt := range []struct {
		name string
		path string
		want int64
	}{{"clean", path, last}, {"unclean", left, last + eventIDGap}} {
		s, err := Open(t.Context(), tt.path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		create(t, s, task(2))
		if got := seqOf(t, lastEventID(t, s)); got != tt.want+1 {
			t.Errorf("%s: first event id after reopen = %d, want %d", tt.name, got, tt.want+1)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The IDs skipped after an unclean stop were never issued: IssuedBetween
// says so for a jump over them, and not for one over events the log held,
// nor for one from inside them (events a power cut took back).
func TestIssuedBetweenSkippedIDs(t *testing.T) {
	t.Parallel()
	s := reopenedUnclean(t, 3)
	create(t, s, task(4))
	all, err := s.ReadEvents(t.Context(), "", 100)
	if err != nil || len(all) != 4 {
		t.Fatalf("ReadEvents = %d events, %v; want 4", len(all), err)
	}
	for _, tt := range []struct {
		after, next string
		want        bool
	}{
		{all[2].ID, all[3].ID, false}, // over the skipped IDs alone
		{all[0].ID, all[3].ID, true},  // over an event as well
		{all[0].ID, all[1].ID, false}, // consecutive
		{"", all[0].ID, false},        // from the start
		{"", all[3].ID, true},
		{all[2].ID, strconv.FormatInt(seqOf(t, all[3].ID)-1, 10), false}, // up to the run's end
		// From inside the run: an event a power cut took back was seen.
		{strconv.FormatInt(seqOf(t, all[2].ID)+1, 10), all[3].ID, true},
		{strconv.FormatInt(seqOf(t, all[3].ID)-2, 10), all[3].ID, true},
		// From the run's end, the position a stream starts at after it.
		{strconv.FormatInt(seqOf(t, all[3].ID)-1, 10), all[3].ID, false},
	} {
		got, err := s.IssuedBetween(t.Context(), tt.after, tt.next)
		if err != nil || got != tt.want {
			t.Errorf("IssuedBetween(%q, %q) = %v, %v; want %v", tt.after, tt.next, got, err, tt.want)
		}
	}
}

// TestEventIDsNotReusedAfterTrimmedEmpty checks that a log the sweep has
// trimmed empty issues no id twice, even after a reopen, when nothing left
// in the log shows the newest id.
func TestEventIDsNotReusedAfterTrimmedEmpty(t *testing.T) {
	t.Parallel()
	s, path := openAt(t, Options{})
	create(t, s, task(1))
	create(t, s, task(2))
	last := seqOf(t, lastEventID(t, s))
	res, err := s.Sweep(t.Context(), store.SweepParams{Now: t0.Add(time.Hour), EventRetention: time.Minute})
	if err != nil || res.EventsDropped != 2 {
		t.Fatalf("Sweep = %+v, %v; want the 2 events dropped", res, err)
	}
	s = reopen(t, s, path)
	create(t, s, task(3))
	if got := seqOf(t, lastEventID(t, s)); got != last+1 {
		t.Errorf("first event id after the trim and a reopen = %d, want %d", got, last+1)
	}
	if _, err := s.ReadEvents(t.Context(), strconv.FormatInt(last, 10), 10); err != nil {
		t.Errorf("resume after the last id before the trim: %v, want it known as issued", err)
	}
}

func lastEventID(t *testing.T, s *Store) string {
	t.Helper()
	id, err := s.LastEventID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// leftBehind copies the files of the open database at path to a folder
// beside it and returns the copy's path: what a killed process leaves, the
// database and a WAL with frames in it.
func leftBehind(t *testing.T, path string) string {
	t.Helper()
	left := filepath.Join(filepath.Dir(path), "left", filepath.Base(path))
	for _, suffix := range []string{"", "-wal"} {
		copyFile(t, path+suffix, left+suffix)
	}
	return left
}

// reopenedUnclean creates tasks 1..n in a new database and returns the
// store opened on the files as a process killed then would have left them
// (event ids skipped past eventIDGap), closed when the test ends.
func reopenedUnclean(t *testing.T, n int) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		create(t, s, task(i))
	}
	left := leftBehind(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(t.Context(), left, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A reader can see a commit before the writer has recorded its newest
// event id in memory: resuming after an event of that commit is not
// refused as an id never issued.
func TestResumeAfterEventNotYetRecorded(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1))
	last, err := s.LastEventID(t.Context())
	if err != nil || last == "" {
		t.Fatalf("LastEventID = %q, %v; want an id", last, err)
	}
	// The moment between the commit and the writer recording its events.
	s.w.lastEvent.Store(seqOf(t, last) - 1)
	if evs, err := s.ReadEvents(t.Context(), last, 10); err != nil || len(evs) != 0 {
		t.Errorf("ReadEvents after %s = %d events, %v; want none, no error", last, len(evs), err)
	}
	if _, err := s.ReadEvents(t.Context(), strconv.FormatInt(seqOf(t, last)+1, 10), 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadEvents after an id never issued: %v, want ErrNotFound", err)
	}
}

// The ids skipped after an unclean stop leave a gap in the log's seqs:
// trimming to the newest MaxEvents counts the events kept, not the seqs
// between the oldest kept and the last.
func TestTrimKeepsNewestAcrossSkippedIDs(t *testing.T) {
	t.Parallel()
	s := reopenedUnclean(t, 3)
	for i := 4; i <= 5; i++ {
		create(t, s, task(i))
	}
	all, err := s.ReadEvents(t.Context(), "", 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("ReadEvents = %d events, %v; want 5", len(all), err)
	}
	for _, keep := range []int{4, 3, 2, 1} {
		if _, err := s.Sweep(t.Context(), store.SweepParams{Now: t0.Add(time.Minute), MaxEvents: keep}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadEvents(t.Context(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := all[len(all)-keep:]; !slices.EqualFunc(got, want, func(a, b taskwire.Event) bool { return a.ID == b.ID }) {
			t.Errorf("after trimming to %d: %v, want %v", keep, eventIDs(got), eventIDs(want))
		}
	}
}

func eventIDs(evs []taskwire.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}
