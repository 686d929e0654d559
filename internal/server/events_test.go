package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// Tests of GET /events, the Server-Sent Events stream, over real HTTP.

// withEventsHeartbeat sets the keepalive interval of event streams.
func withEventsHeartbeat(d time.Duration) option {
	return func(c *Config) { c.EventsHeartbeat = d }
}

// sseWait bounds every wait on a stream: a failure guard, not a measure.
const sseWait = 10 * time.Second

// sseMessage is one item of an event stream: an event, a comment line,
// or a position (an id field alone, which dispatches no event).
type sseMessage struct {
	Comment string // the text after ":" of a comment line
	ID      string
	Event   string
	Data    string
}

// isEvent reports whether m is an event, not a comment or a position.
func (m sseMessage) isEvent() bool { return m.Comment == "" && m.Data != "" }

// sseStream reads an open GET /events response, message by message.
type sseStream struct {
	resp *http.Response
	msgs chan sseMessage
}

// openEvents opens GET /events?query with the Last-Event-ID header set
// when lastID is not empty; the stream must be accepted. It is closed
// when the test ends.
func openEvents(t *testing.T, b *bundle, query, lastID string) *sseStream {
	t.Helper()
	resp := getEvents(t, b, query, lastID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events?%s: HTTP %d", query, resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMessage, 1024)}
	go s.read()
	return s
}

// getEvents sends GET /events?query; the response body is closed when
// the test ends.
func getEvents(t *testing.T, b *bundle, query, lastID string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp
}

// read parses the stream into messages until it ends.
func (s *sseStream) read() {
	defer close(s.msgs)
	r := bufio.NewReader(s.resp.Body)
	var m sseMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			if line != "" {
				s.msgs <- sseMessage{Comment: value}
			} else if m != (sseMessage{}) {
				s.msgs <- m
				m = sseMessage{}
			}
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			m.Data += value
		}
	}
}

// next returns the stream's next event, skipping comments.
func (s *sseStream) next(t *testing.T) sseMessage {
	t.Helper()
	timeout := time.After(sseWait)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatal("event stream ended")
			}
			if m.isEvent() {
				return m
			}
		case <-timeout:
			t.Fatal("no event")
		}
	}
}

// position returns the position the stream begins with: its first
// message must be an id field alone, which sets a client's last event id
// without dispatching an event.
func (s *sseStream) position(t *testing.T) string {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok || m.ID == "" || m.Event != "" || m.Data != "" || m.Comment != "" {
			t.Fatalf("first message %+v (open %v), want a position: an id alone", m, ok)
		}
		return m.ID
	case <-time.After(sseWait):
		t.Fatal("no position")
	}
	return ""
}

// events returns the stream's next n events.
func (s *sseStream) events(t *testing.T, n int) []sseMessage {
	t.Helper()
	out := make([]sseMessage, n)
	for i := range out {
		out[i] = s.next(t)
	}
	return out
}

// quiet asserts that no event arrives for a moment.
func (s *sseStream) quiet(t *testing.T) {
	t.Helper()
	timeout := time.After(100 * time.Millisecond)
	for {
		select {
		case m, ok := <-s.msgs:
			if ok && m.isEvent() {
				t.Fatalf("want no event, got %+v", m)
			}
			if !ok {
				return
			}
		case <-timeout:
			return
		}
	}
}

// ended waits for the stream to end, with no further event.
func (s *sseStream) ended(t *testing.T) {
	t.Helper()
	timeout := time.After(sseWait)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return
			}
			if m.isEvent() {
				t.Fatalf("want the end of the stream, got %+v", m)
			}
		case <-timeout:
			t.Fatal("event stream still open")
		}
	}
}

// envelope decodes an event's data and checks it against its SSE fields.
func envelope(t *testing.T, m sseMessage) taskwire.Event {
	t.Helper()
	var e taskwire.Event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		t.Fatalf("data %q: %v", m.Data, err)
	}
	if e.ID != m.ID || string(e.Type) != m.Event {
		t.Errorf("data has id %q type %q, the SSE fields id %q event %q", e.ID, e.Type, m.ID, m.Event)
	}
	keys := rawObject(t, []byte(m.Data))
	for _, k := range []string{"id", "type", "payload", "metadata", "timestamp"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("data %s: no %q", m.Data, k)
		}
	}
	if len(keys) != 5 {
		t.Errorf("data %s: want exactly id, type, payload, metadata, timestamp", m.Data)
	}
	return e
}

// createWatched creates n tasks while a live stream watches and returns
// the stream and the ids of their events.
func createWatched(t *testing.T, b *bundle, n int) (*sseStream, []string) {
	t.Helper()
	live := openEvents(t, b, "", "")
	for range n {
		createTask(t, b, nil)
	}
	return live, messageIDs(live.events(t, n))
}

func messageIDs(ms []sseMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestEventsTaskLifecycle(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	s := openEvents(t, b, "", "")
	register(t, b, "w1")
	task := createTask(t, b, params{"text": "resize image", "priority": 70})
	clk.Advance(250 * time.Millisecond)
	claimOne(t, b, "w1")
	clk.Advance(1250 * time.Millisecond)
	call[json.RawMessage](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": "ok"})

	ms := s.events(t, 4)
	var got []taskwire.Event
	for _, m := range ms {
		got = append(got, envelope(t, m))
	}
	if diff := cmp.Diff([]taskwire.EventType{taskwire.EventWorkerRegistered, taskwire.EventTaskCreated,
		taskwire.EventTaskClaimed, taskwire.EventTaskCompleted}, []taskwire.EventType{
		got[0].Type, got[1].Type, got[2].Type, got[3].Type}); diff != "" {
		t.Fatalf("event types (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID == got[i-1].ID {
			t.Errorf("events %d and %d share id %s", i-1, i, got[i].ID)
		}
	}
	created, claimed, completed := got[1], got[2], got[3]

	createdBy := rawObject(t, created.Metadata)["createdBy"]
	if _, ok := createdBy.(string); !ok {
		t.Errorf("task.created metadata %s: createdBy is not a string", created.Metadata)
	}
	cases := []struct {
		name              string
		e                 taskwire.Event
		payload, metadata map[string]any
		at                time.Time
	}{
		{"task.created", created,
			map[string]any{"id": task.ID, "text": "resize image", "status": "pending", "priority": 70.0,
				"createdAt": "2025-01-19T12:00:00.000Z"},
			map[string]any{"createdBy": createdBy}, t0},
		{"task.claimed", claimed,
			map[string]any{"taskId": task.ID, "workerId": "w1"},
			map[string]any{"claimedAt": "2025-01-19T12:00:00.250Z"}, t0.Add(250 * time.Millisecond)},
		{"task.completed", completed,
			map[string]any{"id": task.ID, "status": "completed", "duration": 1500.0},
			map[string]any{"completedBy": "w1"}, t0.Add(1500 * time.Millisecond)},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.payload, rawObject(t, tc.e.Payload)); diff != "" {
			t.Errorf("%s payload (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.metadata, rawObject(t, tc.e.Metadata)); diff != "" {
			t.Errorf("%s metadata (-want +got):\n%s", tc.name, diff)
		}
		if tc.e.Timestamp != tc.at.UnixMilli() {
			t.Errorf("%s timestamp %d, want %d", tc.name, tc.e.Timestamp, tc.at.UnixMilli())
		}
	}
}

// A client that starts without Last-Event-ID sees only what happens after.
func TestEventsLiveOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createTask(t, b, params{"text": "before"})
	// A first stream that sees a marker proves that the hub has read
	// everything before it (it may see "before" too: the hub had perhaps
	// not read it yet when that stream started).
	first := openEvents(t, b, "", "")
	marker := createTask(t, b, params{"text": "marker"})
	for rawObject(t, envelope(t, first.next(t)).Payload)["id"] != marker.ID {
	}
	s := openEvents(t, b, "", "")
	after := createTask(t, b, params{"text": "after"})
	if e := envelope(t, s.next(t)); rawObject(t, e.Payload)["id"] != after.ID {
		t.Fatalf("first event %s, want the task.created of %s", e.Payload, after.ID)
	}
}

func TestEventsResume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	live, history := createWatched(t, b, 4)

	cases := []struct {
		name          string
		query, header string
		want          []string
	}{
		// The header resumes after the given event.
		{"header", "", history[0], history[1:]},
		// ?lastEventId= does when there is no header.
		{"query", "lastEventId=" + history[2], "", history[3:]},
		// The header wins over the query.
		{"both", "lastEventId=" + history[0], history[1], history[2:]},
		// Resuming at the newest event replays nothing.
		{"newest", "", history[3], nil},
	}
	streams := make([]*sseStream, len(cases))
	for i, tc := range cases {
		streams[i] = openEvents(t, b, tc.query, tc.header)
		got := messageIDs(streams[i].events(t, len(tc.want)))
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: replay (-want +got):\n%s", tc.name, diff)
		}
		streams[i].quiet(t)
	}
	// Then each continues live: the next event, once.
	task := createTask(t, b, nil)
	want := live.next(t)
	for i, tc := range cases {
		got := streams[i].next(t)
		if got != want {
			t.Errorf("%s: live event %+v, want %+v (task %s)", tc.name, got, want, task.ID)
		}
		streams[i].quiet(t)
	}
}

// A stream begins with its position, the id its events follow: "0" on
// an empty log, the newest event's id later, the resume point when there
// is one. Resuming from the position of a stream that dropped before any
// event gives every event it would have received, with the same filters,
// once.
func TestEventsPosition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name  string
		query string
		n     int // the events of the history below that it selects
	}{
		{"all", "", 4},
		{"one type", "types=task.created", 3},
	}
	first := make([]*sseStream, len(cases))
	for i, tc := range cases {
		first[i] = openEvents(t, b, tc.query, "")
		if got := first[i].position(t); got != "0" {
			t.Fatalf("%s: position on an empty log %q, want 0", tc.name, got)
		}
	}
	register(t, b, "w1")
	for range 3 {
		createTask(t, b, nil)
	}
	var newest string
	for i, tc := range cases {
		want := messageIDs(first[i].events(t, tc.n))
		if i == 0 {
			newest = want[len(want)-1]
		}
		resumed := openEvents(t, b, tc.query, "0")
		if got := resumed.position(t); got != "0" {
			t.Errorf("%s: position resuming after 0 is %q, want 0", tc.name, got)
		}
		if diff := cmp.Diff(want, messageIDs(resumed.events(t, tc.n))); diff != "" {
			t.Errorf("%s: resumed from the empty log's position (-want +got):\n%s", tc.name, diff)
		}
		resumed.quiet(t)
	}

	live := openEvents(t, b, "types=task.created", "")
	at := live.position(t)
	if at != newest {
		t.Fatalf("position %q, want the newest event %q", at, newest)
	}
	createTask(t, b, nil)
	createTask(t, b, nil)
	want := messageIDs(live.events(t, 2))
	resumed := openEvents(t, b, "types=task.created", at)
	if got := resumed.position(t); got != at {
		t.Errorf("position resuming after %s is %q", at, got)
	}
	if diff := cmp.Diff(want, messageIDs(resumed.events(t, 2))); diff != "" {
		t.Errorf("resumed from the position (-want +got):\n%s", diff)
	}
	resumed.quiet(t)
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := createTask(t, b, params{"text": "x"})
	y := createTask(t, b, params{"text": "y"})
	cases := []struct {
		name  string
		query string
		// want lists the expected events as type and task id.
		want []string
	}{
		{"one task", "taskId=" + x.ID,
			[]string{"task.updated " + x.ID, "task.deleted " + x.ID}},
		{"one type", "types=task.deleted",
			[]string{"task.deleted " + y.ID, "task.deleted " + x.ID}},
		{"two types", "types=task.created,task.deleted",
			[]string{"task.deleted " + y.ID, "task.deleted " + x.ID}},
		{"repeated types", "types=task.updated&types=task.deleted",
			[]string{"task.updated " + x.ID, "task.updated " + y.ID, "task.deleted " + y.ID, "task.deleted " + x.ID}},
		{"type and task", "types=task.updated&taskId=" + y.ID,
			[]string{"task.updated " + y.ID}},
		{"worker events only", "types=worker.registered",
			[]string{"worker.registered "}},
	}
	streams := make([]*sseStream, len(cases))
	for i, tc := range cases {
		streams[i] = openEvents(t, b, tc.query, "")
	}
	call[json.RawMessage](t, b, taskwire.MethodTaskUpdate, params{"id": x.ID, "updates": params{"text": "x2"}})
	call[json.RawMessage](t, b, taskwire.MethodTaskUpdate, params{"id": y.ID, "updates": params{"text": "y2"}})
	register(t, b, "w1")
	call[json.RawMessage](t, b, taskwire.MethodTaskDelete, params{"id": y.ID})
	call[json.RawMessage](t, b, taskwire.MethodTaskDelete, params{"id": x.ID})

	for i, tc := range cases {
		var got []string
		for _, m := range streams[i].events(t, len(tc.want)) {
			e := envelope(t, m)
			id, _ := rawObject(t, e.Payload)["id"].(string) // none for worker events
			got = append(got, string(e.Type)+" "+id)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		streams[i].quiet(t)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t, withEventsHeartbeat(20*time.Millisecond))
	s := openEvents(t, b, "", "")
	timeout := time.After(sseWait)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatal("event stream ended")
			}
			if m.Comment == "keepalive" {
				return
			}
			if m.isEvent() {
				t.Fatalf("want a keepalive comment, got %+v", m)
			}
		case <-timeout:
			t.Fatal("no keepalive")
		}
	}
}

func TestEventsUnknownType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := httpGet(t, b, "/events?types=task.created,task.exploded")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP %d, want 400", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got struct {
		Error *taskwire.Error `json:"error"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Error == nil {
		t.Fatalf("body %s: want a JSON error object (%v)", body, err)
	}
	if got.Error.Code != taskwire.CodeInvalidParams || !strings.Contains(got.Error.Message, "task.exploded") {
		t.Errorf("error %+v: want code %d naming task.exploded", got.Error, taskwire.CodeInvalidParams)
	}
	checkValidation(t, got.Error, "types")
}

// A taskId no task can have (not UTF-8, over 128 characters, holding
// U+0000) is HTTP 400 with the -32602 that events.subscribe answers for
// it, not a stream that silently matches nothing.
func TestEventsBadTaskID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"%ff", strings.Repeat("t", 129), "a%00b"} {
		status, body := refusedStream(t, b, "/events?taskId="+id)
		wantParamsRefused(t, "taskId="+clipText(id), status, body, "taskId")
	}
}

// refusedStream gets path and returns its status, and its body unless it
// is 200: an open stream is closed without being read.
func refusedStream(tb testing.TB, b *bundle, path string) (int, []byte) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, body
}

// wantParamsRefused checks that an HTTP answer (status, body) to what is
// a bad param named field is 400 with a JSON-RPC -32602 naming it.
func wantParamsRefused(tb testing.TB, what string, status int, body []byte, field string) {
	tb.Helper()
	if status != http.StatusBadRequest {
		tb.Errorf("%s: HTTP %d, want 400", what, status)
		return
	}
	var got struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *taskwire.Error `json:"error"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.JSONRPC != "2.0" || got.Error == nil || got.Error.Code != taskwire.CodeInvalidParams {
		tb.Errorf("%s: body %s, want a JSON-RPC -32602 error", what, clipText(string(body)))
		return
	}
	checkValidation(tb, got.Error, field)
}

// checkValidation checks that the -32602 e has the data of every bad
// param (SPEC section 2): a validation text naming field.
func checkValidation(tb testing.TB, e *taskwire.Error, field string) {
	tb.Helper()
	data, _ := e.Data.(map[string]any)
	if v, _ := data["validation"].(string); !strings.HasPrefix(v, field+": ") {
		tb.Errorf("data %v: want a validation naming %s", e.Data, field)
	}
}

// Drain, the first step of a shutdown, ends open streams so that
// http.Server.Shutdown does not wait for them.
func TestEventsEndOnDrain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := openEvents(t, b, "", "")
	b.srv.Drain()
	s.ended(t)
}

// Last-Event-ID 0 is before the first event: the whole log is replayed,
// then the stream goes live.
func TestEventsFromTheStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := createTask(t, b, params{"text": "first"})
	s := openEvents(t, b, "types=task.created", "0")
	if e := envelope(t, s.next(t)); e.ID != "1" || rawObject(t, e.Payload)["id"] != first.ID {
		t.Fatalf("first event %s %s, want event 1, the task.created of %s", e.ID, e.Payload, first.ID)
	}
	second := createTask(t, b, params{"text": "second"})
	if e := envelope(t, s.next(t)); rawObject(t, e.Payload)["id"] != second.ID {
		t.Fatalf("next event %s, want the task.created of %s", e.Payload, second.ID)
	}
}

// A Last-Event-ID the server never issued cannot be resumed from: 400
// with a JSON error naming it, not a stream that silently waits.
func TestEventsUnknownLastEventID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	createTask(t, b, nil)
	for _, id := range []string{"999999", "not-an-id"} {
		resp := getEvents(t, b, "", id)
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Last-Event-ID %q: HTTP %d %s, want 400", id, resp.StatusCode, body)
			continue
		}
		var got struct {
			Error *taskwire.Error `json:"error"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Error == nil || !strings.Contains(got.Error.Message, id) {
			t.Errorf("Last-Event-ID %q: body %s, want a JSON error naming it", id, body)
			continue
		}
		checkValidation(t, got.Error, "Last-Event-ID")
	}
}

// Serve shuts down promptly while event streams are open: they end
// instead of holding http.Server.Shutdown for its whole grace period.
func TestEventsServeShutdown(t *testing.T) {
	t.Parallel()
	s, err := New(context.Background(), Config{DataDir: t.TempDir(), Logger: discardLogger(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, "127.0.0.1:0", func(addr string) { addrc <- addr }) }()
	b := &bundle{srv: s, url: "http://" + <-addrc}
	streams := []*sseStream{openEvents(t, b, "", ""), openEvents(t, b, "types=task.created", "")}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(sseWait):
		t.Fatal("Serve did not return with event streams open")
	}
	for _, st := range streams {
		st.ended(t)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A stream resuming after events the log no longer holds first sends an
// events.gap message in their place: its id is the last missing event's,
// its payload says which are missing. Then come the events kept.
func TestEventsGapAfterTrimmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, history := createWatched(t, b, 4)
	if _, err := b.srv.Service().Store().Sweep(t.Context(), store.SweepParams{Now: time.Now(), MaxEvents: 1}); err != nil {
		t.Fatal(err)
	}
	s := openEvents(t, b, "types=task.completed", history[0])
	gap := s.next(t)
	e := envelope(t, gap)
	var p taskwire.GapPayload
	if err := json.Unmarshal(e.Payload, &p); err != nil || gap.Event != string(taskwire.EventGap) || gap.ID != history[2] ||
		p != (taskwire.GapPayload{After: history[0], Next: history[3]}) {
		t.Fatalf("first message: id %s event %s data %s; want id %s, event %s, payload after %s next %s",
			gap.ID, gap.Event, gap.Data, history[2], taskwire.EventGap, history[0], history[3])
	}
	s.quiet(t) // the event kept is a task.created
}

// TestEventsNotHTMLEscaped: an event's payload keeps <, > and & as they
// are, as every answer of the server does.
func TestEventsNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := openEvents(t, b, "", "")
	createTask(t, b, params{"text": `<b> & "x"`})
	if m := s.events(t, 1)[0]; !strings.Contains(m.Data, `"text":"<b> & \"x\""`) {
		t.Errorf("task.created data %s: want the text as sent, unescaped", m.Data)
	}
}
