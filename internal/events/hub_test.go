package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// t0 is the epoch of these tests' clock.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// wait bounds every wait for an event: a failure guard, not a measure.
const wait = 10 * time.Second

// fixture is a real SQLite store and a running hub over it.
type fixture struct {
	st  *sqlite.Store
	hub *Hub
	seq atomic.Int64 // numbers the tasks created
}

// setup opens a store in t's temporary directory and runs a hub over it
// until the test ends.
func setup(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "taskwire.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	hub := NewHub(st, opts)
	go hub.Run(context.WithoutCancel(t.Context()))
	t.Cleanup(hub.Close)
	return &fixture{st: st, hub: hub}
}

// discard is a logger that writes nowhere.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// create creates a task and returns its id.
func (f *fixture) create(t testing.TB) string {
	t.Helper()
	n := f.seq.Add(1)
	at := t0.Add(time.Duration(n) * time.Millisecond)
	tk := taskwire.Task{
		ID: fmt.Sprintf("t-%026d", n), Queue: taskwire.DefaultQueue, Text: fmt.Sprintf("task %d", n),
		Status: taskwire.StatusPending, Priority: taskwire.DefaultPriority,
		MaxAttempts: taskwire.DefaultMaxAttempts, LeaseMs: taskwire.DefaultLeaseMs,
		RunAt: at, CreatedAt: at, UpdatedAt: at,
	}
	if _, _, err := f.st.CreateTask(context.Background(), store.CreateTaskParams{Task: tk, By: "tester", Now: at}); err != nil {
		t.Error(err)
	}
	return tk.ID
}

// register registers a worker (event worker.registered).
func (f *fixture) register(t testing.TB, id string) {
	t.Helper()
	if err := f.st.RegisterWorker(t.Context(), store.RegisterWorkerParams{ID: id, By: id, Now: t0}); err != nil {
		t.Fatal(err)
	}
}

// log returns every event the store's log holds after after.
func (f *fixture) log(t testing.TB, after string) []taskwire.Event {
	t.Helper()
	var all []taskwire.Event
	for {
		evs, err := f.st.ReadEvents(t.Context(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].ID
	}
}

// subscribe subscribes for the rest of the test.
func (f *fixture) subscribe(t testing.TB, filter Filter, after string) *Subscription {
	t.Helper()
	s, err := f.hub.Subscribe(t.Context(), filter, after)
	if err != nil {
		t.Fatalf("subscribe %+v after %q: %v", filter, after, err)
	}
	t.Cleanup(s.Close)
	return s
}

// next returns the subscription's next event.
func next(t testing.TB, s *Subscription) taskwire.Event {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return e
	case <-time.After(wait):
		t.Fatal("no event")
	}
	return taskwire.Event{}
}

// collect returns the subscription's next n events.
func collect(t testing.TB, s *Subscription, n int) []taskwire.Event {
	t.Helper()
	evs := make([]taskwire.Event, n)
	for i := range evs {
		evs[i] = next(t, s)
	}
	return evs
}

// ended waits until the subscription's channel closes, discarding what is
// left in it, and returns Err.
func ended(t testing.TB, s *Subscription) error {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-s.Events():
			if !ok {
				return s.Err()
			}
		case <-timeout:
			t.Fatal("subscription did not end")
		}
	}
}

// quiet asserts that the subscription receives nothing for a moment.
func quiet(t testing.TB, s *Subscription) {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		t.Fatalf("want nothing, got %+v (open %v)", e, ok)
	case <-time.After(50 * time.Millisecond):
	}
}

// sync makes sure the hub has read every event committed so far: it
// subscribes, writes a marker event and waits for it.
func (f *fixture) sync(t testing.TB) {
	t.Helper()
	s := f.subscribe(t, Filter{Types: []taskwire.EventType{taskwire.EventWorkerRegistered}}, "")
	f.register(t, "sync")
	next(t, s)
	s.Close()
}

func ids(evs []taskwire.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestFanOut(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	subs := make([]*Subscription, 50)
	for i := range subs {
		subs[i] = f.subscribe(t, Filter{}, "")
	}
	for range 20 {
		f.create(t)
	}
	want := f.log(t, "")
	if len(want) != 20 {
		t.Fatalf("log holds %d events, want 20", len(want))
	}
	for i, s := range subs {
		got := collect(t, s, 20)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("subscriber %d (-want +got):\n%s", i, diff)
		}
	}
	for _, e := range want {
		if e.Type != taskwire.EventTaskCreated || e.TaskID == "" {
			t.Fatalf("event %+v: want task.created with its task id", e)
		}
	}
}

func TestLiveOnlyFromNow(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.create(t)
	f.sync(t)
	s := f.subscribe(t, Filter{}, "")
	quiet(t, s)
	id := f.create(t)
	if e := next(t, s); e.TaskID != id {
		t.Fatalf("first event is about %q, want the task created after subscribing %q", e.TaskID, id)
	}
}

var _ Tail = (*sqlite.Store)(nil)

// runHubOver replaces f's hub with one over log (f's store, wrapped),
// running until the test ends.
func (f *fixture) runHubOver(t *testing.T, log Log) {
	f.hub.Close()
	f.hub = NewHub(log, Options{Logger: discard()})
	go f.hub.Run(context.WithoutCancel(t.Context()))
	t.Cleanup(f.hub.Close)
}

// heldLog is a store whose change signal fires only when the test says.
type heldLog struct {
	*sqlite.Store
	changed store.Signal
}

func (l *heldLog) EventsChanged() <-chan struct{} { return l.changed.Wait() }

// A live-only subscription starts at the end of the log, also while the
// hub's cursor lags behind it: an event committed before the subscription
// and read by the hub after never reaches it.
func TestLiveOnlyWhileHubLags(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	log := &heldLog{Store: f.st}
	f.runHubOver(t, log)

	f.create(t) // committed; the hub is not told
	s := f.subscribe(t, Filter{}, "")
	log.changed.Fire() // the hub now reads the event committed before s
	id := f.create(t)
	log.changed.Fire()
	if e := next(t, s); e.TaskID != id {
		t.Fatalf("first event is about %q, want the task created after subscribing %q", e.TaskID, id)
	}
}

// readCounter is a store whose event reads are counted.
type readCounter struct {
	*sqlite.Store
	reads atomic.Int64
}

func (r *readCounter) ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error) {
	r.reads.Add(1)
	return r.Store.ReadEvents(ctx, after, limit)
}

// While nobody subscribes the hub follows the end of the log without
// reading events; a subscription then gets the events after it, and one
// with a resume point replays those it missed.
func TestUnwatchedSkipsReads(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	log := &readCounter{Store: f.st}
	f.runHubOver(t, log)

	first := f.create(t)
	for range 9 {
		f.create(t)
	}
	end, err := f.st.LastEventID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(wait); f.hub.cursor() != end; {
		if time.Now().After(deadline) {
			t.Fatalf("hub cursor %q, want the end of the log %q", f.hub.cursor(), end)
		}
		time.Sleep(time.Millisecond)
	}
	if n := log.reads.Load(); n != 0 {
		t.Fatalf("hub read the log %d times with nobody subscribed", n)
	}

	live := f.subscribe(t, Filter{}, "")
	quiet(t, live)
	id := f.create(t)
	if e := next(t, live); e.TaskID != id {
		t.Fatalf("first live event is about %q, want %q", e.TaskID, id)
	}
	resumed, err := f.hub.Subscribe(t.Context(), Filter{}, f.log(t, "")[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resumed.Close)
	got := collect(t, resumed, 10)
	if got[0].TaskID == first || got[len(got)-1].TaskID != id {
		t.Fatalf("replay gave tasks %q ... %q, want from the second task to %q", got[0].TaskID, got[len(got)-1].TaskID, id)
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	// Subscribe with every filter first, then write one history that all
	// of them see a part of.
	cases := []struct {
		name   string
		filter Filter
		// want picks the expected events out of the whole log.
		want func(e taskwire.Event) bool
	}{
		// No filter: everything, worker events included.
		{"all", Filter{}, func(taskwire.Event) bool { return true }},
		// One type.
		{"created", Filter{Types: []taskwire.EventType{taskwire.EventTaskCreated}},
			func(e taskwire.Event) bool { return e.Type == taskwire.EventTaskCreated }},
		// Several types, one of which never happens.
		{"worker or deleted", Filter{Types: []taskwire.EventType{taskwire.EventWorkerRegistered, taskwire.EventTaskDeleted}},
			func(e taskwire.Event) bool { return e.Type == taskwire.EventWorkerRegistered }},
		// One task: worker events have no task and are left out.
		{"task 2", Filter{TaskID: fmt.Sprintf("t-%026d", 2)},
			func(e taskwire.Event) bool { return e.TaskID == fmt.Sprintf("t-%026d", 2) }},
		// Both: the type and the task must match.
		{"task 3 created", Filter{Types: []taskwire.EventType{taskwire.EventTaskCreated}, TaskID: fmt.Sprintf("t-%026d", 3)},
			func(e taskwire.Event) bool {
				return e.Type == taskwire.EventTaskCreated && e.TaskID == fmt.Sprintf("t-%026d", 3)
			}},
	}
	subs := make([]*Subscription, len(cases))
	for i, tc := range cases {
		subs[i] = f.subscribe(t, tc.filter, "")
	}
	f.create(t)
	f.register(t, "w1")
	f.create(t)
	f.create(t)
	f.register(t, "w2")
	all := f.log(t, "")
	for i, tc := range cases {
		var want []taskwire.Event
		for _, e := range all {
			if tc.want(e) {
				want = append(want, e)
			}
		}
		got := collect(t, subs[i], len(want))
		if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		quiet(t, subs[i])
	}
}

func TestUnknownType(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	_, err := f.hub.Subscribe(t.Context(), Filter{Types: []taskwire.EventType{taskwire.EventTaskCreated, "task.exploded"}}, "")
	var unknown *UnknownTypeError
	if !errors.As(err, &unknown) || unknown.Type != "task.exploded" {
		t.Fatalf("got %v, want an UnknownTypeError naming task.exploded", err)
	}
}

func TestReplayThenLive(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for range 5 {
		f.create(t)
	}
	history := f.log(t, "")
	s := f.subscribe(t, Filter{}, history[1].ID)
	if diff := cmp.Diff(ids(history[2:]), ids(collect(t, s, 3))); diff != "" {
		t.Fatalf("replay (-want +got):\n%s", diff)
	}
	quiet(t, s)
	id := f.create(t)
	if e := next(t, s); e.TaskID != id {
		t.Fatalf("live event is about %q, want %q", e.TaskID, id)
	}
	// Resuming at the newest event replays nothing.
	f.sync(t)
	last := f.log(t, "")
	s2 := f.subscribe(t, Filter{}, last[len(last)-1].ID)
	quiet(t, s2)
}

// TestReplayConcurrentWrites resumes subscribers, at many points of the
// log, while writers keep appending: each must get exactly the log after
// its resume point, in order, with no gap and no duplicate where the
// replay meets live delivery. Small pages make the replay take several
// reads, so live events pile up while it runs.
func TestReplayConcurrentWrites(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{ReadLimit: 7})
	for range 10 {
		f.create(t)
	}
	const writers, perWriter = 3, 60
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range perWriter {
				f.create(t)
			}
		})
	}

	type resumed struct {
		after string
		sub   *Subscription
	}
	var subs []resumed
	for i := 0; i < 30; i++ {
		log := f.log(t, "")
		after := log[(i*7)%len(log)].ID
		subs = append(subs, resumed{after, f.subscribe(t, Filter{}, after)})
		time.Sleep(time.Millisecond)
	}
	wg.Wait()

	all := f.log(t, "")
	for i, r := range subs {
		var want []taskwire.Event
		for _, e := range all {
			if compareIDs(e.ID, r.after) > 0 {
				want = append(want, e)
			}
		}
		got := collect(t, r.sub, len(want))
		if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
			t.Fatalf("subscriber %d after %s (-want +got):\n%s", i, r.after, diff)
		}
		quiet(t, r.sub)
	}
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Buffer: 8})
	slow := f.subscribe(t, Filter{}, "")
	fast := f.subscribe(t, Filter{}, "")
	var got []taskwire.Event
	for range 40 {
		f.create(t)
		got = append(got, next(t, fast))
	}
	if diff := cmp.Diff(ids(f.log(t, "")), ids(got)); diff != "" {
		t.Fatalf("fast subscriber (-want +got):\n%s", diff)
	}
	if err := ended(t, slow); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("slow subscriber ended with %v, want %v", err, ErrSlowConsumer)
	}
	if err := fast.Err(); err != nil {
		t.Fatalf("fast subscriber ended: %v", err)
	}
	if n := f.hub.Subscribers(); n != 1 {
		t.Fatalf("hub has %d subscribers, want 1", n)
	}
}

// A subscriber that does not read its replay while live events pile up is
// dropped too.
func TestSlowConsumerDuringReplay(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Buffer: 4, ReadLimit: 2})
	for range 10 {
		f.create(t)
	}
	history := f.log(t, "")
	slow := f.subscribe(t, Filter{}, history[0].ID)
	// Resuming at the newest event, not "live from now": a live-only
	// subscriber may also get events the hub had not read yet, which
	// would overflow this one's small buffer too.
	fast := f.subscribe(t, Filter{}, history[len(history)-1].ID)
	for range 10 {
		f.create(t)
		next(t, fast)
	}
	if err := ended(t, slow); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("slow subscriber ended with %v, want %v", err, ErrSlowConsumer)
	}
}

func TestEnd(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})

	ctx, cancel := context.WithCancel(t.Context())
	byCtx, err := f.hub.Subscribe(ctx, Filter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	byClose := f.subscribe(t, Filter{}, "")
	byHub := f.subscribe(t, Filter{}, "")

	cancel()
	if err := ended(t, byCtx); !errors.Is(err, context.Canceled) {
		t.Errorf("after ctx cancelled: %v, want %v", err, context.Canceled)
	}
	byClose.Close()
	byClose.Close()
	if err := ended(t, byClose); !errors.Is(err, ErrUnsubscribed) {
		t.Errorf("after Close: %v, want %v", err, ErrUnsubscribed)
	}
	f.hub.Close()
	if err := ended(t, byHub); !errors.Is(err, ErrHubClosed) {
		t.Errorf("after hub Close: %v, want %v", err, ErrHubClosed)
	}
	if _, err := f.hub.Subscribe(t.Context(), Filter{}, ""); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Subscribe after hub Close: %v, want %v", err, ErrHubClosed)
	}
}

// Once Done is closed, Err says why, even when the subscription ended
// because its context did: a subscriber that waits on Done alone (the
// WebSocket forwarder) must not read a nil error and take it for a
// failure.
func TestErrSetWhenDone(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for i := range 200 {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := f.hub.Subscribe(ctx, Filter{}, "")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		<-s.Done()
		if err := s.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription %d: Err after Done = %v, want %v", i, err, context.Canceled)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "1", -1}, // "" is before every event
		{"1", "1", 0},
		{"2", "10", -1}, // numeric, not lexical
		{"10", "9", 1},
		{"123", "124", -1},
		{"1000000", "999999", 1},
	}
	for _, tc := range cases {
		if got := compareIDs(tc.a, tc.b); got != tc.want {
			t.Errorf("compareIDs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// tailless is a log without a Tail, as the distributed backend's: a
// live-only subscription starts where the hub's cursor is.
type tailless struct{ Log }

// TestStartIsResumePoint opens live-only subscriptions while writers keep
// appending, over a log with a Tail, one without, and one whose hub lags:
// each subscription's Start is the point its events follow, so that
// resuming there gives exactly the events it received, no gap and no
// duplicate. Before the first event the start is "0", which every log
// accepts as a resume point.
func TestStartIsResumePoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		wrap func(*testing.T, *sqlite.Store) Log
	}{
		{"tail", func(_ *testing.T, st *sqlite.Store) Log { return st }},
		{"no tail", func(_ *testing.T, st *sqlite.Store) Log { return tailless{st} }},
		{"hub lags", func(t *testing.T, st *sqlite.Store) Log {
			l := &heldLog{Store: st}
			go func() { // the hub hears of new events only now and then
				tick := time.NewTicker(3 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-tick.C:
						l.changed.Fire()
					case <-t.Context().Done():
						return
					}
				}
			}()
			return l
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, Options{})
			f.runHubOver(t, tc.wrap(t, f.st))
			empty := f.subscribe(t, Filter{}, "")
			if got := empty.Start(); got != "0" {
				t.Fatalf("start on an empty log: %q, want \"0\"", got)
			}

			var wg sync.WaitGroup
			wg.Go(func() {
				for range 60 {
					f.create(t)
				}
			})
			subs := []*Subscription{empty}
			for range 20 {
				subs = append(subs, f.subscribe(t, Filter{}, ""))
				time.Sleep(time.Millisecond)
			}
			wg.Wait()

			for i, s := range subs {
				want := f.log(t, s.Start())
				got := collect(t, s, len(want))
				if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
					t.Fatalf("subscriber %d starting after %s (-want +got):\n%s", i, s.Start(), diff)
				}
				quiet(t, s)
			}
		})
	}
}

// A resuming subscription starts where it was asked to.
func TestStartOfResume(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.create(t)
	f.create(t)
	first := f.log(t, "")[0].ID
	if got := f.subscribe(t, Filter{}, first).Start(); got != first {
		t.Fatalf("start %q, want the resume point %q", got, first)
	}
}
