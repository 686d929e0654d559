package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
)

// holdParams carries a large pad, to make a large body.
type holdParams struct {
	Pad string `json:"pad"`
}

// bodyBudgetServer serves a method that blocks until gate closes, on a
// server whose body budget fits one body of 3 MiB at a time.
func bodyBudgetServer(t *testing.T, gate <-chan struct{}, entered chan<- struct{}) (*Server, *httptest.Server) {
	t.Helper()
	hold := Register("hold", "Wait for the gate.", func(ctx context.Context, p *holdParams) (int, error) {
		entered <- struct{}{}
		<-gate
		return len(p.Pad), nil
	})
	s := NewServer([]Method{hold}, Options{MaxBodyBytes: 4 << 20, BodyBudget: 4 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// post sends a request of about n bytes to the hold method, without a
// Content-Length when chunked, and returns its error object.
func post(t *testing.T, url string, n int, chunked bool) (*taskwire.Error, error) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"hold","params":{"pad":"` + strings.Repeat("x", n) + `"}}`)
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length: sent chunked
	}
	resp, err := http.Post(url, "application/json", r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Error *taskwire.Error `json:"error"`
	}
	return out.Error, json.NewDecoder(resp.Body).Decode(&out)
}

// Large bodies share a budget held until their response is written: a
// second large body waits for the first's response before its method
// runs, and one that waits too long is refused with -32001; small bodies
// are not counted. Both with and without a Content-Length.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		gate, entered := make(chan struct{}), make(chan struct{}, 4)
		var opened sync.Once
		open := func() { opened.Do(func() { close(gate) }) }
		s, ts := bodyBudgetServer(t, gate, entered)
		t.Cleanup(open) // runs before the server's Close, on failure too
		first := make(chan error, 1)
		go func() { _, err := post(t, ts.URL, 3<<20, chunked); first <- err }()
		<-entered
		if s.bodies.TryAcquire(2 << 20) {
			t.Fatalf("chunked %v: the budget has room for 2 MiB while a 3 MiB body is held", chunked)
		}
		// A small body is not counted: its method runs now.
		small := make(chan error, 1)
		go func() { _, err := post(t, ts.URL, 100, chunked); small <- err }()
		<-entered

		second := make(chan *taskwire.Error, 1)
		go func() {
			e, err := post(t, ts.URL, 3<<20, chunked)
			if err != nil {
				t.Error(err)
			}
			second <- e
		}()
		select {
		case <-entered:
			t.Fatalf("chunked %v: a second large body ran beside the first", chunked)
		case <-time.After(200 * time.Millisecond):
		}
		open()
		if e := <-second; e != nil {
			t.Errorf("chunked %v: second large body: %v", chunked, e)
		}
		<-entered
		for _, ch := range []chan error{first, small} {
			if err := <-ch; err != nil {
				t.Errorf("chunked %v: %v", chunked, err)
			}
		}
		if !s.bodies.TryAcquire(4 << 20) {
			t.Errorf("chunked %v: the budget is not whole once every response is written", chunked)
		}
		s.bodies.Release(4 << 20)

		// A body that waits longer than bodyWait is refused, unread.
		s.bodyWait = 10 * time.Millisecond
		if err := s.bodies.Acquire(context.Background(), 4<<20); err != nil {
			t.Fatal(err)
		}
		e, err := post(t, ts.URL, 3<<20, chunked)
		if err != nil || e == nil || e.Code != taskwire.CodeUnavailable {
			t.Errorf("chunked %v: body over a full budget: %v, %v; want -32001", chunked, e, err)
		}
		s.bodies.Release(4 << 20)
	}
}

// A message of a stream (a WebSocket message, whose length is not known
// until its end) shares the budget of POST bodies: a small one takes
// nothing, a large one the largest message's share until it is released,
// and one that finds no room is read to its end and refused.
func TestReadMessageBudget(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, Options{MaxBodyBytes: 4 << 20, BodyBudget: 4 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()

	small := []byte(`{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}`)
	msg, release, err := s.ReadMessage(ctx, bytes.NewReader(small), 3<<20)
	if err != nil || !bytes.Equal(msg, small) {
		t.Fatalf("small message: %q, %v", msg, err)
	}
	if !s.bodies.TryAcquire(4 << 20) {
		t.Fatal("a small message took from the budget")
	}
	s.bodies.Release(4 << 20)
	release()

	large := bytes.Repeat([]byte(" "), 2<<20)
	msg, release, err = s.ReadMessage(ctx, bytes.NewReader(large), 3<<20)
	if err != nil || !bytes.Equal(msg, large) {
		t.Fatalf("large message: %d bytes, %v", len(msg), err)
	}
	if s.bodies.TryAcquire(2 << 20) {
		t.Fatal("the budget has room for 2 MiB while a message holds 3 MiB of 4")
	}
	release()
	if !s.bodies.TryAcquire(4 << 20) {
		t.Fatal("the budget is not whole after the release")
	}

	// The budget is full now: a large message waits, then is refused,
	// read to its end (the stream stays in step) and holding nothing.
	s.bodyWait = 10 * time.Millisecond
	r := bytes.NewReader(large)
	msg, _, err = s.ReadMessage(ctx, r, 3<<20)
	if !errors.Is(err, ErrBodyBudget) || msg != nil {
		t.Fatalf("message over a full budget: %d bytes, %v; want ErrBodyBudget", len(msg), err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes of the refused message left unread", r.Len())
	}
	s.bodies.Release(4 << 20)
	if !s.bodies.TryAcquire(4 << 20) {
		t.Fatal("a refused message took from the budget")
	}
	var refusal struct {
		ID    any             `json:"id"`
		Error *taskwire.Error `json:"error"`
	}
	if err := json.Unmarshal(BudgetRefusal(), &refusal); err != nil || refusal.ID != nil ||
		refusal.Error == nil || refusal.Error.Code != taskwire.CodeUnavailable {
		t.Fatalf("refusal %s: %v", BudgetRefusal(), err)
	}
}

// A large message takes from the budget as it grows, about twice what has
// arrived, not the largest message's share at once: messages that stall
// part way cannot hold the budget for others with a little of their own.
// Bodies without a Content-Length read the same way.
func TestReadMessageBudgetGrows(t *testing.T) {
	t.Parallel()
	const budget, limit = 64 << 20, 32 << 20
	s := NewServer(nil, Options{MaxBodyBytes: limit, BodyBudget: budget,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	pr, pw := io.Pipe()
	type read struct {
		msg []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		msg, release, err := s.ReadMessage(context.Background(), pr, limit)
		if err == nil {
			release()
		}
		done <- read{msg, err}
	}()
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 3<<19)); err != nil { // 1.5 MiB, all read once Write returns
		t.Fatal(err)
	}
	if !s.bodies.TryAcquire(budget - 4<<20) {
		t.Fatalf("a message stalled after 1.5 MiB holds more than 4 MiB of the budget")
	}
	s.bodies.Release(budget - 4<<20)
	if _, err := pw.Write(bytes.Repeat([]byte(" "), 20<<20)); err != nil { // grows on to 21.5 MiB
		t.Fatal(err)
	}
	pw.Close()
	if r := <-done; r.err != nil || len(r.msg) != 3<<19+20<<20 {
		t.Fatalf("message: %d bytes, %v", len(r.msg), r.err)
	}
	if !s.bodies.TryAcquire(budget) {
		t.Fatal("the budget is not whole after the release")
	}
}

// The body budget is twice the body limit unless set: a lower limit
// lowers it too.
func TestBodyBudgetFollowsTheLimit(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, Options{MaxBodyBytes: 4 << 20})
	if !s.bodies.TryAcquire(8 << 20) {
		t.Fatal("no room for twice the body limit")
	}
	if s.bodies.TryAcquire(1) {
		t.Fatal("the budget holds more than twice the body limit")
	}
}
