package events

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// trim drops all but the newest keep events of the store's log.
func (f *fixture) trim(t testing.TB, keep int) {
	t.Helper()
	if _, err := f.st.Sweep(t.Context(), store.SweepParams{Now: t0, MaxEvents: keep}); err != nil {
		t.Fatal(err)
	}
}

// wantGap checks that e is the events.gap event standing for the events
// after after and before next: its ID is the last of them.
func wantGap(t *testing.T, e taskwire.Event, after, next string) {
	t.Helper()
	n, err := strconv.ParseUint(next, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("next %q: not an event id after another", next)
	}
	last := strconv.FormatUint(n-1, 10)
	var p taskwire.GapPayload
	if err := json.Unmarshal(e.Payload, &p); err != nil || e.Type != taskwire.EventGap || e.ID != last ||
		p != (taskwire.GapPayload{After: after, Next: next}) {
		t.Fatalf("got %s %s %s, want %s %s {after %s, next %s}", e.Type, e.ID, e.Payload, taskwire.EventGap, last, after, next)
	}
}

// A subscriber resuming after events the log no longer holds gets an
// events.gap event in their place, whatever its filter, then the events
// the log holds, then live ones.
func TestGapOnResumeAfterTrimmed(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	var tasks []string
	for range 6 {
		tasks = append(tasks, f.create(t))
	}
	history := f.log(t, "")
	f.trim(t, 2)
	kept := history[4:]
	for _, filter := range []Filter{{}, {TaskID: tasks[5]}, {Types: []taskwire.EventType{taskwire.EventWorkerOffline}}} {
		s := f.subscribe(t, filter, history[0].ID)
		wantGap(t, next(t, s), history[0].ID, kept[0].ID)
		want := []string{}
		for _, e := range kept {
			if filter.match(&e) {
				want = append(want, e.ID)
			}
		}
		if diff := cmp.Diff(want, ids(collect(t, s, len(want)))); diff != "" {
			t.Errorf("filter %+v: after the gap (-want +got):\n%s", filter, diff)
		}
		quiet(t, s)
	}
	// From the start of the log ("0"): the trimmed events are missing too.
	s := f.subscribe(t, Filter{}, "0")
	wantGap(t, next(t, s), "0", kept[0].ID)
	if diff := cmp.Diff(ids(kept), ids(collect(t, s, len(kept)))); diff != "" {
		t.Errorf(`after "0": after the gap (-want +got):\n%s`, diff)
	}
	// Resuming after the gap event goes on past it, with no new gap.
	s = f.subscribe(t, Filter{}, history[3].ID)
	if diff := cmp.Diff(ids(kept), ids(collect(t, s, len(kept)))); diff != "" {
		t.Errorf("after the last trimmed event (-want +got):\n%s", diff)
	}
	f.wantLiveCreate(t, s)
}

// wantLiveCreate creates a task and checks that s receives its event next.
func (f *fixture) wantLiveCreate(t *testing.T, s *Subscription) {
	t.Helper()
	id := f.create(t)
	if e := next(t, s); e.TaskID != id {
		t.Fatalf("live event %s %s, want the task created %s", e.Type, e.TaskID, id)
	}
}

// When the log no longer holds any event after the resume point, the gap
// runs up to where live delivery starts, and live events follow it.
func TestGapWhenEverythingTrimmed(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for range 3 {
		f.create(t)
	}
	f.sync(t) // the hub has read every event: live delivery starts after the last
	history := f.log(t, "")
	last := history[len(history)-1].ID
	if _, err := f.st.Sweep(t.Context(), store.SweepParams{Now: t0.Add(24 * 3600e9), EventRetention: 1}); err != nil {
		t.Fatal(err)
	}
	if left := f.log(t, ""); len(left) != 0 {
		t.Fatalf("log holds %d events after trimming all", len(left))
	}
	s := f.subscribe(t, Filter{}, history[0].ID)
	wantGap(t, next(t, s), history[0].ID, successor(last))
	f.wantLiveCreate(t, s)
}

// When events leave the log before the hub has read them, live
// subscribers get an events.gap event in their place.
func TestGapInLiveDelivery(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	log := &heldLog{Store: f.st}
	f.runHubOver(t, log)
	first := f.create(t)
	s := f.subscribe(t, Filter{TaskID: first}, "0")
	if e := next(t, s); e.TaskID != first {
		t.Fatalf("replayed %s %s, want the event of %s", e.Type, e.TaskID, first)
	}
	log.changed.Fire() // the hub reads the first event
	quiet(t, s)
	for range 3 {
		f.create(t) // committed; the hub is not told
	}
	history := f.log(t, "")
	f.trim(t, 1)
	log.changed.Fire()
	wantGap(t, next(t, s), history[0].ID, history[3].ID)
	quiet(t, s) // the kept event is another task's
}

// IDs a log skipped on purpose (SQLite, after a stop without a clean
// close) were never issued: a jump over them is no gap. A resume point
// inside them is an event a power cut took back: that one is.
func TestNoGapOverSkippedIDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "taskwire.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st}
	f.create(t)
	left := filepath.Join(dir, "left", "taskwire.db") // the files as a killed process leaves them
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(left), 0o750)
		}
		if err == nil {
			err = os.WriteFile(left+suffix, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if f.st, err = sqlite.Open(t.Context(), left, sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.hub = NewHub(f.st, Options{Logger: discard()})
	go f.hub.Run(context.WithoutCancel(t.Context()))
	t.Cleanup(f.hub.Close)
	before := f.log(t, "")
	resumed := f.subscribe(t, Filter{}, before[0].ID)
	// An id inside the run: an event a power cut took back after this
	// subscriber saw it.
	takenBack := f.subscribe(t, Filter{}, successor(before[0].ID))
	id := f.create(t)
	after := f.log(t, before[0].ID)
	wantGap(t, next(t, takenBack), successor(before[0].ID), after[0].ID)
	fromStart := f.subscribe(t, Filter{}, "0")
	for name, s := range map[string]*Subscription{"resumed": resumed, "from the start": fromStart} {
		if name == "from the start" {
			if e := next(t, s); e.ID != before[0].ID {
				t.Fatalf("%s: first event %s %s, want %s", name, e.Type, e.ID, before[0].ID)
			}
		}
		if e := next(t, s); e.TaskID != id {
			t.Fatalf("%s: got %s %s %s, want the event of the task created after the reopen", name, e.Type, e.ID, e.Payload)
		}
	}
}

// A gap the hub sees after its own position begins, for a subscriber
// whose replay went further, after the last event it had.
func TestGapFromWhatTheSubscriberHad(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	log := &heldLog{Store: f.st}
	f.runHubOver(t, log)
	probe := f.subscribe(t, Filter{}, "0")
	f.create(t)
	log.changed.Fire()
	next(t, probe) // the hub has read the first event
	for range 3 {
		f.create(t) // committed; the hub is not told
	}
	history := f.log(t, "")
	s := f.subscribe(t, Filter{}, "0") // the replay reads them all
	if diff := cmp.Diff(ids(history), ids(collect(t, s, len(history)))); diff != "" {
		t.Fatalf("replay (-want +got):\n%s", diff)
	}
	for range 2 {
		f.create(t)
	}
	f.trim(t, 1)
	kept := f.log(t, "")
	log.changed.Fire()
	wantGap(t, next(t, s), history[len(history)-1].ID, kept[0].ID)
	if e := next(t, s); e.ID != kept[0].ID {
		t.Fatalf("after the gap: %s %s, want %s", e.Type, e.ID, kept[0].ID)
	}
}
