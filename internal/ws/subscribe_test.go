package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/ws"
)

// A subscription receives the events that match its filters, each
// carrying its subscription id, and none after events.unsubscribe.
func TestSubscribeFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	all := cl.subscribe(map[string]any{})
	completed := cl.subscribe(map[string]any{"types": []string{"task.completed", "task.claimed"}})

	call[taskwire.RegisterResult](cl, taskwire.MethodSystemRegister, map[string]any{"id": "w1"})
	task := createTask(t, b, "watched")
	other := createTask(t, b, "other")
	byTask := cl.subscribe(map[string]any{"taskId": task.ID})
	claim := call[taskwire.ClaimResult](cl, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1"})
	if claim.TaskID != task.ID {
		t.Fatalf("claimed %s, want %s", claim.TaskID, task.ID)
	}
	call[taskwire.CompleteResult](cl, taskwire.MethodTaskComplete, map[string]any{"id": task.ID, "workerId": "w1", "result": 42})

	// Which subscription got what, in order.
	got := map[string][]string{}
	for range 5 + 2 + 2 { // as many as want holds
		n := cl.event()
		got[n.Subscription] = append(got[n.Subscription], string(n.Event.Type))
	}
	want := map[string][]string{
		all:       {"worker.registered", "task.created", "task.created", "task.claimed", "task.completed"},
		completed: {"task.claimed", "task.completed"},
		byTask:    {"task.claimed", "task.completed"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events by subscription (-want +got):\n%s", diff)
	}

	// After events.unsubscribe nothing more of it arrives; the others go on.
	un := call[taskwire.UnsubscribeResult](cl, taskwire.MethodEventsUnsubscribe, map[string]any{"subscription": all})
	if !un.Unsubscribed {
		t.Errorf("unsubscribe = %+v", un)
	}
	call[taskwire.DeleteResult](cl, taskwire.MethodTaskDelete, map[string]any{"id": other.ID})
	call[taskwire.DeleteResult](cl, taskwire.MethodTaskDelete, map[string]any{"id": task.ID})
	n := cl.event()
	if n.Subscription != byTask || n.Event.Type != taskwire.EventTaskDeleted {
		t.Errorf("after unsubscribe got %s on %s, want task.deleted on %s", n.Event.Type, n.Subscription, byTask)
	}
	call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)
	cl.noEvent()

	// Unsubscribing twice, or an unknown id, is -32602.
	if e := cl.callErr(taskwire.MethodEventsUnsubscribe, map[string]any{"subscription": all}); e.Code != taskwire.CodeInvalidParams || e.Message != "Subscription not found: "+all {
		t.Errorf("second unsubscribe: %v", e)
	} else {
		wantValidation(t, "second unsubscribe", e, "subscription")
	}
}

// wantValidation checks that e's data has the validation text of every
// -32602 (SPEC section 2), naming the first of fields when given.
func wantValidation(tb testing.TB, name string, e *taskwire.Error, fields ...string) {
	tb.Helper()
	data, _ := e.Data.(map[string]any)
	v, _ := data["validation"].(string)
	if v == "" || len(fields) > 0 && !strings.HasPrefix(v, fields[0]+": ") {
		tb.Errorf("%s: data %v, want a validation naming %v", name, e.Data, fields)
	}
}

// Bad subscribe params are -32602 and open nothing.
func TestSubscribeValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	createTask(t, b, "one event")
	for _, tc := range []struct {
		name   string
		params map[string]any
		msg    string
	}{
		{"unknown type", map[string]any{"types": []string{"task.nope"}}, "Invalid params"},
		{"types not a list", map[string]any{"types": "task.created"}, "Invalid params"},
		{"not an event id", map[string]any{"afterEventId": "abc"}, "Unknown event id: abc"},
		{"never issued", map[string]any{"afterEventId": "999999"}, "Unknown event id: 999999"},
		{"empty id", map[string]any{"afterEventId": ""}, "Invalid params"},
		{"unknown field", map[string]any{"type": "task.created"}, "Invalid params"},
		{"NUL in taskId", map[string]any{"taskId": "a\x00b"}, "Invalid params"},
	} {
		e := cl.callErr(taskwire.MethodEventsSubscribe, tc.params)
		if e.Code != taskwire.CodeInvalidParams || e.Message[:min(len(tc.msg), len(e.Message))] != tc.msg {
			t.Errorf("%s: %v, want -32602 %q", tc.name, e, tc.msg)
		}
		if _, ok := tc.params["afterEventId"]; ok {
			wantValidation(t, tc.name, e, "afterEventId")
		} else if _, ok := tc.params["taskId"]; ok {
			wantValidation(t, tc.name, e, "taskId")
		} else {
			wantValidation(t, tc.name, e)
		}
	}
	if n := b.srv.Hub().Subscribers(); n != 0 {
		t.Errorf("%d subscriptions open after failed subscribes", n)
	}
}

// afterEventId replays what the log holds after that id, then goes live:
// while other clients write, the subscriber sees every event after the
// resume point exactly once, in order.
func TestReplayWithConcurrentWriters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 50 {
		createTask(t, b, "before "+strconv.Itoa(i))
	}
	logged, err := b.srv.Service().Store().ReadEvents(context.Background(), "", 1000)
	if err != nil || len(logged) != 50 {
		t.Fatalf("log: %d events, %v", len(logged), err)
	}
	after := logged[19].ID

	// Writers run before, during and after the subscribe.
	const writers, perWriter = 4, 40
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range perWriter {
				createTask(t, b, "writer "+strconv.Itoa(w)+" task "+strconv.Itoa(i))
			}
		})
	}
	close(start)
	cl := dial(t, b, nil)
	resp := cl.response(cl.request(taskwire.MethodEventsSubscribe, map[string]any{"afterEventId": after}))
	sub := decode[taskwire.SubscribeResult](t, resp).Subscription
	wg.Wait()

	last, _ := strconv.Atoi(after)
	want := 50 + writers*perWriter - last
	for i := range want {
		m := cl.nextEvent()
		if i == 0 && m.seq < resp.seq {
			t.Errorf("first event (message %d) came before the subscribe response (message %d)", m.seq, resp.seq)
		}
		n := decode[taskwire.EventNotification](t, message{Result: m.Params})
		if n.Subscription != sub {
			t.Fatalf("event on %s, want %s", n.Subscription, sub)
		}
		id, _ := strconv.Atoi(n.Event.ID)
		if id != last+1 {
			t.Fatalf("event %s after %d: a gap or a duplicate", n.Event.ID, last)
		}
		last = id
	}
	// One more write arrives live, right after.
	createTask(t, b, "live")
	if n := cl.event(); n.Event.ID != strconv.Itoa(last+1) {
		t.Errorf("live event %s, want %d", n.Event.ID, last+1)
	}
	cl.noEvent()
}

// errorLog records the messages of the records at level ERROR.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.msgs = append(l.msgs, r.Message)
	}
	return nil
}

// A client that closes a connection with subscriptions ends them
// quietly: nothing is logged as a failure.
func TestCloseWithSubscriptionsLogsNoError(t *testing.T) {
	t.Parallel()
	log := &errorLog{}
	b := setup(t, wsOptions(ws.Options{Logger: slog.New(log)}))
	for range 20 {
		cl := dial(t, b, nil)
		for range 3 {
			cl.subscribe(map[string]any{})
		}
		if err := cl.c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "connections closed", func() bool { return b.srv.WebSocket().Connections() == 0 })
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.msgs) > 0 {
		t.Errorf("%d errors logged, the first %q", len(log.msgs), log.msgs[0])
	}
}

// subscribePosition subscribes with params and returns the result's
// subscription and afterEventId as sent.
func subscribePosition(cl *client, params any) (sub, after string) {
	cl.t.Helper()
	r := call[map[string]any](cl, taskwire.MethodEventsSubscribe, params)
	sub, _ = r["subscription"].(string)
	after, _ = r["afterEventId"].(string)
	if sub == "" || after == "" {
		cl.t.Fatalf("subscribe %v: result %v, want a subscription and an afterEventId", params, r)
	}
	return sub, after
}

// The result of events.subscribe carries the position its events follow:
// "0" on an empty log, the newest event of the log otherwise, the
// afterEventId given when resuming. A client whose connection drops
// before its first event resubscribes from there and gets exactly the
// events of the outage.
func TestSubscribePosition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, after := subscribePosition(dial(t, b, nil), map[string]any{}); after != "0" {
		t.Errorf("afterEventId on an empty log = %q, want \"0\"", after)
	}

	createTask(t, b, "before")
	createTask(t, b, "before too")
	logged, err := b.srv.Service().Store().ReadEvents(context.Background(), "", 1000)
	if err != nil || len(logged) != 2 {
		t.Fatalf("log: %d events, %v", len(logged), err)
	}
	first := dial(t, b, nil)
	_, pos := subscribePosition(first, map[string]any{"types": []string{"task.created"}})
	if pos != logged[1].ID {
		t.Errorf("afterEventId = %q, want the newest event of the log %q", pos, logged[1].ID)
	}
	if err := first.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}

	// The outage: events while no connection is open.
	var missed []string
	for i := range 3 {
		missed = append(missed, createTask(t, b, "during the outage "+strconv.Itoa(i)).ID)
	}
	cl := dial(t, b, nil)
	sub, resumed := subscribePosition(cl, map[string]any{"types": []string{"task.created"}, "afterEventId": pos})
	if resumed != pos {
		t.Errorf("afterEventId when resuming = %q, want the one given, %q", resumed, pos)
	}
	live := createTask(t, b, "after the resume").ID
	var got []string
	for range len(missed) + 1 {
		n := cl.event()
		if n.Subscription != sub || n.Event.Type != taskwire.EventTaskCreated {
			t.Fatalf("event %s on %s, want task.created on %s", n.Event.Type, n.Subscription, sub)
		}
		var task taskwire.Task
		if err := json.Unmarshal(n.Event.Payload, &task); err != nil {
			t.Fatalf("payload %s: %v", n.Event.Payload, err)
		}
		got = append(got, task.ID)
	}
	if diff := cmp.Diff(append(missed, live), got); diff != "" {
		t.Errorf("tasks of the events after resuming (-want +got):\n%s", diff)
	}
	cl.noEvent()
}

// rpc.discover publishes afterEventId in the result of events.subscribe.
func TestSubscribeResultDiscovered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var doc struct {
		Methods []struct {
			Name   string `json:"name"`
			Result struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"result"`
		} `json:"methods"`
	}
	if err := b.cl.Call(context.Background(), taskwire.MethodDiscover, map[string]any{}, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Methods {
		if m.Name != taskwire.MethodEventsSubscribe {
			continue
		}
		var s struct {
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		if err := json.Unmarshal(m.Result.Schema, &s); err != nil {
			t.Fatalf("result schema of %s: %s: %v", m.Name, m.Result.Schema, err)
		}
		for _, field := range []string{"subscription", "afterEventId"} {
			if s.Properties[field].Type != "string" || !slices.Contains(s.Required, field) {
				t.Errorf("result schema of %s: %s is %+v, required %v; want a required string", m.Name, field, s.Properties[field], s.Required)
			}
		}
		return
	}
	t.Errorf("rpc.discover does not list %s", taskwire.MethodEventsSubscribe)
}

// A subscription resuming after events the log no longer holds first gets
// an events.gap event in their place, whatever its filters, then the
// events kept that match them.
func TestSubscribeGapAfterTrimmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	cl.subscribe(map[string]any{})
	var history []string
	for range 4 {
		createTask(t, b, "trimmed")
		history = append(history, cl.event().Event.ID)
	}
	if _, err := b.srv.Service().Store().Sweep(t.Context(), store.SweepParams{Now: time.Now(), MaxEvents: 1}); err != nil {
		t.Fatal(err)
	}
	resumed := cl.subscribe(map[string]any{"afterEventId": history[0], "types": []string{"task.completed"}})
	n := cl.event()
	var p taskwire.GapPayload
	if err := json.Unmarshal(n.Event.Payload, &p); err != nil || n.Subscription != resumed || n.Event.Type != taskwire.EventGap ||
		n.Event.ID != history[2] || p != (taskwire.GapPayload{After: history[0], Next: history[3]}) {
		t.Fatalf("first event %+v (payload %s); want %s with id %s on %s, payload after %s next %s",
			n, n.Event.Payload, taskwire.EventGap, history[2], resumed, history[0], history[3])
	}
	cl.noEvent() // the event kept is a task.created
}

// TestSubscribeNotHTMLEscaped: an event notification keeps <, > and & of
// the payload as they are, as every answer of the server does.
func TestSubscribeNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	cl.subscribe(map[string]any{})
	createTask(t, b, `<b> & "x"`)
	if m := cl.nextEvent(); !bytes.Contains(m.raw, []byte(`"text":"<b> & \"x\""`)) {
		t.Errorf("notification %s: want the text as sent, unescaped", m.raw)
	}
}
