package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/servertest"
)

// collect follows the stream into a channel until the test ends.
func collect(t *testing.T, c *client.Client, p client.EventsParams) (<-chan taskwire.Event, <-chan error) {
	t.Helper()
	events, errc := make(chan taskwire.Event, 100), make(chan error, 1)
	cx, cancel := context.WithCancel(ctx(t))
	t.Cleanup(cancel)
	go func() {
		errc <- c.Events(cx, p, func(e taskwire.Event) error { events <- e; return nil })
	}()
	return events, errc
}

// next returns the next event or fails after 10 seconds.
func next(t *testing.T, events <-chan taskwire.Event) taskwire.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return taskwire.Event{}
	}
}

// waitSubscribed creates marker tasks until the stream delivers one, so
// that the subscription is known to be live.
func waitSubscribed(t *testing.T, b *bundle, events <-chan taskwire.Event) {
	t.Helper()
	for {
		create(t, b, taskwire.CreateParams{Text: "marker"})
		select {
		case <-events:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestEventsFilters follows task.completed events of one task only.
func TestEventsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	events, _ := collect(t, b.c, client.EventsParams{Types: []taskwire.EventType{taskwire.EventTaskCreated}})
	waitSubscribed(t, b, events)
	task := create(t, b, taskwire.CreateParams{Text: "watched"})
	if e := next(t, events); e.Type != taskwire.EventTaskCreated || !bytes.Contains(e.Payload, []byte(task.ID)) {
		t.Fatalf("event %+v", e)
	}

	byTask, _ := collect(t, b.c, client.EventsParams{TaskID: task.ID, After: ""})
	time.Sleep(200 * time.Millisecond)
	if _, err := b.c.Register(ctx(t), taskwire.RegisterParams{ID: "w1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.DeleteTask(ctx(t), task.ID); err != nil {
		t.Fatal(err)
	}
	if e := next(t, byTask); e.Type != taskwire.EventTaskDeleted {
		t.Fatalf("event of the task: %+v (worker events must be filtered out)", e)
	}
}

// TestEventsResume: a stream cut by the network resumes after the last
// event delivered, with no gap and no duplicate.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var streams atomic.Int64
	c := newClient(front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/events" || streams.Add(1) > 1 {
			return false
		}
		// The first stream passes its position and one event, then the
		// connection drops.
		resp, err := http.Get(b.url + r.URL.RequestURI())
		if err != nil {
			t.Error(err)
			return true
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		var buf bytes.Buffer
		for !bytes.Contains(buf.Bytes(), []byte("}\n\n")) {
			chunk := make([]byte, 1)
			if _, err := resp.Body.Read(chunk); err != nil {
				return true
			}
			buf.Write(chunk)
		}
		_, _ = w.Write(buf.Bytes())
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	events, _ := collect(t, c, client.EventsParams{Types: []taskwire.EventType{taskwire.EventTaskCreated}})
	time.Sleep(300 * time.Millisecond)
	var ids []string
	for i := range 5 {
		ids = append(ids, create(t, b, taskwire.CreateParams{Text: string(rune('a' + i))}).ID)
	}
	for i, id := range ids {
		if e := next(t, events); !bytes.Contains(e.Payload, []byte(id)) {
			t.Fatalf("event %d: %s, want task %s", i, e.Payload, id)
		}
	}
	if streams.Load() < 2 {
		t.Fatalf("%d connections: the stream was never resumed", streams.Load())
	}
}

// TestEventsResumeBeforeAnyEvent: a stream that drops before any event
// arrived resumes from the position the server gave when it opened, so the
// events of the outage that follows still arrive, each once.
func TestEventsResumeBeforeAnyEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	var streams atomic.Int64
	dropped, created := make(chan struct{}), make(chan struct{})
	addr := front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/events" {
			return false
		}
		if streams.Add(1) == 1 {
			// Open for a moment once the server answered, then dropped.
			defer close(dropped) // ServeCut ends the cut stream with a panic
			servertest.ServeCut(w, r, target, 300*time.Millisecond)
			return true
		}
		select {
		case <-created:
			return false
		default: // the server is away until the tasks are created
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return true
		}
	})
	c := client.New(addr, client.Options{MaxAttempts: 1000, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	events, _ := collect(t, c, client.EventsParams{Types: []taskwire.EventType{taskwire.EventTaskCreated}})
	<-dropped
	var ids []string
	for i := range 3 {
		ids = append(ids, create(t, b, taskwire.CreateParams{Text: string(rune('a' + i))}).ID)
	}
	close(created)
	for i, id := range ids {
		if e := next(t, events); !bytes.Contains(e.Payload, []byte(id)) {
			t.Fatalf("event %d: %s, want task %s", i, e.Payload, id)
		}
	}
	select {
	case e := <-events:
		t.Fatalf("event %s after the three, want none", e.Payload)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestEventsRefused: an unknown type is the server's error, at once.
func TestEventsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := b.c.Events(ctx(t), client.EventsParams{Types: []taskwire.EventType{"task.nope"}},
		func(taskwire.Event) error { return nil })
	if client.CodeOf(err) != taskwire.CodeInvalidParams {
		t.Fatalf("err = %v", err)
	}
	stop := errors.New("enough")
	events, _ := collect(t, b.c, client.EventsParams{})
	waitSubscribed(t, b, events)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				_, _ = b.c.CreateTask(context.Background(), taskwire.CreateParams{Text: "x"})
			}
		}
	}()
	err = b.c.Events(ctx(t), client.EventsParams{}, func(taskwire.Event) error { return stop })
	close(done)
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's", err)
	}
}
