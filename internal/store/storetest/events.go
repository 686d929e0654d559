package storetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// eventsNow is when the changes of the event tests are made.
var eventsNow = t0.Add(time.Minute)

// eventCase is a change and the events it must write: change makes it at
// eventsNow and returns the events, built by the store's builders from the
// state it left.
type eventCase struct {
	name   string
	setup  func(s *bundle)
	change func(s *bundle) []taskwire.Event
}

func testEvents(t *testing.T, newStore newStoreFunc) {
	// Every change writes its events, with the payload and metadata of the
	// builders, TaskID set for task events and the change's time as
	// timestamp. The order of the events of one change is left open.
	t.Run("PerChange", func(t *testing.T) {
		t.Parallel()
		for _, tt := range append(taskEventCases(), workerEventCases()...) {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				mark := s.eventMark()
				want := tt.change(s)
				s.wantEvents(mark, want...)
			})
		}
	})

	// An operation that fails, or changes nothing, writes no event and
	// wakes no one.
	t.Run("NoChangeNoEvent", func(t *testing.T) {
		t.Parallel()
		for _, tt := range noEventCases() {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				changed := s.st.EventsChanged()
				mark := s.eventMark()
				if err := tt.op(s); (err != nil) != tt.wantErr {
					t.Fatalf("err = %v, want error %v", err, tt.wantErr)
				}
				s.wantEvents(mark)
				if isClosed(changed) {
					t.Errorf("EventsChanged closed without a change")
				}
			})
		}
	})

	// ReadEvents pages through the log oldest first; after an ID resumes
	// exactly after it. IDs are consecutive integers in decimal (a store
	// may skip runs of them on purpose, not here): a
	// follower tells from them that events are missing (events.gap).
	t.Run("Read", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		if got := s.readEvents("", 10); len(got) != 0 {
			t.Errorf("empty log: ReadEvents = %d events, want none", len(got))
		}
		// "0", the position of a stream that opens on an empty log, is a
		// resume point there.
		if got := s.readEvents("0", 10); len(got) != 0 {
			t.Errorf(`empty log: ReadEvents(after "0") = %d events, want none`, len(got))
		}
		for n := 1; n <= 7; n++ {
			s.create(newTask(n))
		}
		all := s.readEvents("", 100)
		if diff := gocmp.Diff(taskIDs(1, 2, 3, 4, 5, 6, 7), eventTaskIDs(all)); diff != "" {
			t.Fatalf("ReadEvents from the oldest: task ids (-want +got):\n%s", diff)
		}
		for i := 1; i < len(all); i++ {
			if want := nextEventID(t, all[i-1].ID); all[i].ID != want {
				t.Errorf("event id %q after %q, want %q", all[i].ID, all[i-1].ID, want)
			}
		}
		// Pages of 3: no gap, no duplicate.
		var paged []string
		for after := ""; ; {
			page := s.readEvents(after, 3)
			if len(page) > 3 {
				t.Fatalf("ReadEvents(limit 3) = %d events", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, eventIDs(page)...)
			after = page[len(page)-1].ID
		}
		if diff := gocmp.Diff(eventIDs(all), paged); diff != "" {
			t.Errorf("paged ids (-want +got):\n%s", diff)
		}
		for i, e := range all {
			if diff := gocmp.Diff(eventIDs(all[i+1:]), eventIDs(s.readEvents(e.ID, 100))); diff != "" {
				t.Errorf("after event %d (-want +got):\n%s", i, diff)
			}
		}
		// New events follow the last one read.
		s.create(newTask(8))
		if got := eventTaskIDs(s.readEvents(all[len(all)-1].ID, 100)); !gocmp.Equal(taskIDs(8), got) {
			t.Errorf("after the last event: %v, want the new one %v", got, taskIDs(8))
		}
		// "0" is before the first id: the whole log, as "" is.
		if diff := gocmp.Diff(eventIDs(s.readEvents("", 100)), eventIDs(s.readEvents("0", 100))); diff != "" {
			t.Errorf(`after "0" (-want +got):\n%s`, diff)
		}
		// Ids this log never issued: malformed, or beyond its newest.
		for _, bad := range []string{"not-an-event-id", "-1", " 1", "999999999"} {
			if _, err := s.st.ReadEvents(s.ctx, bad, 10); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ReadEvents(after %q) = %v, want an error matching store.ErrNotFound", bad, err)
			}
		}
	})

	t.Run("Task", func(t *testing.T) { testTaskEvents(t, newStore) })

	// EventsChanged is closed after a change commits, not before; each
	// call after that returns a channel for the next change.
	t.Run("Changed", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		changed := s.st.EventsChanged()
		if isClosed(changed) {
			t.Fatalf("EventsChanged closed before any change")
		}
		s.create(newTask(1))
		waitClosed(t, changed, "after a create")
		next := s.st.EventsChanged()
		if isClosed(next) {
			t.Fatalf("EventsChanged after the change is closed already")
		}
		s.register("w1")
		waitClosed(t, next, "after a registration")
	})

	// Sweep trims the log from its oldest end: events older than
	// Now - EventRetention, then all but the newest MaxEvents. Zero keeps
	// all. IDs are never reused.
	t.Run("Retention", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
		for n := 1; n <= 10; n++ {
			tk := newTask(n)
			tk.CreatedAt, tk.UpdatedAt, tk.RunAt = at(n), at(n), at(n)
			s.create(tk)
		}
		all := s.eventsAfter("")
		now := at(10)
		for _, c := range []struct {
			p    store.SweepParams
			want []taskwire.Event // left in the log
		}{
			{store.SweepParams{Now: now}, all},
			// The event of exactly Now - EventRetention stays.
			{store.SweepParams{Now: now, EventRetention: 5 * time.Second}, all[4:]},
			{store.SweepParams{Now: now, MaxEvents: 3}, all[7:]},
			{store.SweepParams{Now: now, EventRetention: 5 * time.Second, MaxEvents: 3}, all[7:]},
		} {
			before := len(s.eventsAfter(""))
			r := s.sweep(c.p)
			if want := before - len(c.want); r.EventsDropped != want {
				t.Errorf("Sweep(%+v) dropped %d events, want %d", c.p, r.EventsDropped, want)
			}
			if diff := gocmp.Diff(eventIDs(c.want), eventIDs(s.eventsAfter(""))); diff != "" {
				t.Errorf("after Sweep(%+v): ids (-want +got):\n%s", c.p, diff)
			}
		}
		// After a dropped event: from the oldest kept.
		if diff := gocmp.Diff(eventIDs(all[7:]), eventIDs(s.eventsAfter(all[0].ID))); diff != "" {
			t.Errorf("after a dropped event (-want +got):\n%s", diff)
		}
		// Everything dropped: the next event still comes after the last.
		r := s.sweep(store.SweepParams{Now: at(100), EventRetention: time.Second})
		if r.EventsDropped != 3 || len(s.eventsAfter("")) != 0 {
			t.Errorf("Sweep dropping everything: dropped %d, %d left; want 3 and none", r.EventsDropped, len(s.eventsAfter("")))
		}
		tk := newTask(11)
		tk.CreatedAt, tk.UpdatedAt, tk.RunAt = at(101), at(101), at(101)
		s.create(tk)
		got := s.eventsAfter(all[9].ID)
		if !gocmp.Equal(taskIDs(11), eventTaskIDs(got)) || got[0].ID != nextEventID(t, all[9].ID) {
			t.Errorf("after the last dropped event: %v (ids %v), want the new one %v with id %s",
				eventTaskIDs(got), eventIDs(got), taskIDs(11), nextEventID(t, all[9].ID))
		}
	})

	// The events a sweep writes count among the newest MaxEvents: after
	// the sweep the log holds no more than MaxEvents.
	t.Run("MaxEventsCountsSweepEvents", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.LeaseMs = 1000
		s.claimed(tk, "w1", tk.CreatedAt)
		claimedAt := s.eventsAfter("")
		r := s.sweep(store.SweepParams{Now: tk.CreatedAt.Add(time.Second), MaxEvents: 2})
		left := s.eventsAfter("")
		if r.Requeued != 1 || len(left) != 2 || left[0].ID != claimedAt[len(claimedAt)-1].ID ||
			left[1].Type != taskwire.EventTaskRequeued {
			t.Errorf("Sweep requeuing with MaxEvents 2 left %v (requeued %d), want [%s task.requeued]",
				eventTypes(left), r.Requeued, claimedAt[len(claimedAt)-1].Type)
		}
		if want := len(claimedAt) - 1; r.EventsDropped != want {
			t.Errorf("Sweep dropped %d events, want %d", r.EventsDropped, want)
		}
	})
}

// eventView is an event as the suite compares it: payload and metadata
// as JSON values, without its ID.
type eventView struct {
	Type      taskwire.EventType
	TaskID    string
	Timestamp time.Time
	Payload   any
	Metadata  any
}

// eventViews returns the views of evs in a canonical order, since the
// order of the events of one change is left open.
func eventViews(evs []taskwire.Event) []eventView {
	out := make([]eventView, 0, len(evs))
	for _, e := range evs {
		out = append(out, eventView{e.Type, e.TaskID, time.UnixMilli(e.Timestamp).UTC(), jsonValue(e.Payload), jsonValue(e.Metadata)})
	}
	key := func(v eventView) string {
		p, _ := json.Marshal(v.Payload) // keys sorted
		return string(v.Type) + "\x00" + v.TaskID + "\x00" + string(p)
	}
	slices.SortFunc(out, func(a, b eventView) int { return cmp.Compare(key(a), key(b)) })
	return out
}

// wantEvents checks that the events after mark are want, in any order.
func (s *bundle) wantEvents(mark string, want ...taskwire.Event) {
	s.t.Helper()
	if diff := gocmp.Diff(eventViews(want), eventViews(s.eventsAfter(mark))); diff != "" {
		s.t.Errorf("events (-want +got):\n%s", diff)
	}
}

// readEvents calls ReadEvents and fails the test on error.
func (s *bundle) readEvents(after string, limit int) []taskwire.Event {
	s.t.Helper()
	evs, err := s.st.ReadEvents(s.ctx, after, limit)
	if err != nil {
		s.t.Fatalf("ReadEvents(after %q, %d): %v", after, limit, err)
	}
	return evs
}

// eventsAfter reads every event after mark ("" for all).
func (s *bundle) eventsAfter(mark string) []taskwire.Event {
	s.t.Helper()
	var all []taskwire.Event
	for {
		page := s.readEvents(mark, 500)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		mark = page[len(page)-1].ID
	}
}

// eventMark returns the ID of the newest event, "" when there is none.
func (s *bundle) eventMark() string {
	s.t.Helper()
	evs := s.eventsAfter("")
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1].ID
}

// nextEventID returns the ID of the event that follows the event id.
func nextEventID(t *testing.T, id string) string {
	t.Helper()
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != id {
		t.Fatalf("event id %q is not an integer in decimal", id)
	}
	return strconv.FormatUint(n+1, 10)
}

func eventIDs(evs []taskwire.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func eventTaskIDs(evs []taskwire.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.TaskID)
	}
	return out
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed waits a while for ch to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Errorf("EventsChanged not closed %s", after)
	}
}

// bigMetadata is a metadata patch over the limit.
var bigMetadata = json.RawMessage(`{"big":"` + strings.Repeat("x", taskwire.MaxMetadataBytes) + `"}`)

// testTaskEvents: TaskEvents returns one task's events from the log,
// oldest first, the oldest limit of them, and loses them as the sweep
// trims the log; a deleted task's events stay readable until then.
func testTaskEvents(t *testing.T, newStore newStoreFunc) {
	t.Parallel()
	s := setup(t, newStore)
	at := func(n int) time.Time { return eventsNow.Add(time.Duration(n) * time.Second) }
	one, two := newTask(1), newTask(2)
	s.create(one, two)
	s.reclaim(one.ID, one.Queue, "w1", at(1))
	if err := s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: two.ID, Now: at(2)}); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	s.complete(store.CompleteTaskParams{ID: one.ID, WorkerID: "w1", Result: json.RawMessage(`1`), Now: at(3)})

	all := s.eventsAfter("")
	ofTask := func(id string) []taskwire.Event {
		var out []taskwire.Event
		for _, e := range all {
			if e.TaskID == id {
				out = append(out, e)
			}
		}
		return out
	}
	for _, c := range []struct {
		id    string
		limit int
		types []taskwire.EventType
		want  []taskwire.Event
	}{
		{one.ID, 100, []taskwire.EventType{taskwire.EventTaskCreated, taskwire.EventTaskClaimed, taskwire.EventTaskCompleted}, ofTask(one.ID)},
		{one.ID, 2, []taskwire.EventType{taskwire.EventTaskCreated, taskwire.EventTaskClaimed}, ofTask(one.ID)[:2]},
		{two.ID, 100, []taskwire.EventType{taskwire.EventTaskCreated, taskwire.EventTaskDeleted}, ofTask(two.ID)},
		{taskID(99), 100, nil, nil},
	} {
		got := s.taskEvents(c.id, c.limit)
		if diff := gocmp.Diff(c.types, eventTypes(got)); diff != "" {
			t.Errorf("TaskEvents(%s, %d): types (-want +got):\n%s", c.id, c.limit, diff)
		}
		if diff := gocmp.Diff(eventIDs(c.want), eventIDs(got)); diff != "" {
			t.Errorf("TaskEvents(%s, %d): ids (-want +got):\n%s", c.id, c.limit, diff)
		}
		if diff := gocmp.Diff(eventViews(c.want), eventViews(got)); diff != "" {
			t.Errorf("TaskEvents(%s, %d): events (-want +got):\n%s", c.id, c.limit, diff)
		}
	}

	// The sweep keeps the newest event only, task one's completion.
	s.sweep(store.SweepParams{Now: at(4), MaxEvents: 1})
	if diff := gocmp.Diff(eventIDs(all[len(all)-1:]), eventIDs(s.taskEvents(one.ID, 100))); diff != "" {
		t.Errorf("after trimming: TaskEvents(%s) ids (-want +got):\n%s", one.ID, diff)
	}
	if got := s.taskEvents(two.ID, 100); len(got) != 0 {
		t.Errorf("after trimming: TaskEvents(%s) = %d events, want none", two.ID, len(got))
	}
}

// taskEvents calls TaskEvents and fails the test on error or on a nil
// slice, which the contract rules out.
func (s *bundle) taskEvents(id string, limit int) []taskwire.Event {
	s.t.Helper()
	evs, err := s.st.TaskEvents(s.ctx, id, limit)
	if err != nil {
		s.t.Fatalf("TaskEvents(%s, %d): %v", id, limit, err)
	}
	if evs == nil {
		s.t.Fatalf("TaskEvents(%s, %d) = nil, want a slice", id, limit)
	}
	return evs
}

func eventTypes(evs []taskwire.Event) []taskwire.EventType {
	var out []taskwire.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
