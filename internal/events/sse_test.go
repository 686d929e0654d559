package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// The SSE handler's answers to a resume point the log refuses. The
// stream itself is tested over a real server in internal/server.

// refusingLog is a Log that holds no event and refuses every resume point
// with err.
type refusingLog struct{ err error }

func (l refusingLog) ReadEvents(_ context.Context, after string, _ int) ([]taskwire.Event, error) {
	if after != "" {
		return nil, fmt.Errorf("read events after %q: %w", after, l.err)
	}
	return nil, nil
}

func (refusingLog) EventsChanged() <-chan struct{} { return make(chan struct{}) }

func TestSSERefusedResume(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		status int
		code   taskwire.Code
	}{
		// An id the log never issued is the client's mistake.
		{"unknown id", store.ErrNotFound, http.StatusBadRequest, taskwire.CodeInvalidParams},
		// A backend that cannot be reached: retry later.
		{"unavailable", &store.UnavailableError{Backend: "sqlite", Err: fmt.Errorf("disk I/O error")},
			http.StatusServiceUnavailable, taskwire.CodeUnavailable},
		// Anything else is the server's, and says nothing of it.
		{"other", fmt.Errorf("disk on fire"), http.StatusInternalServerError, taskwire.CodeInternalError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hub := NewHub(refusingLog{tc.err}, Options{Logger: discard()})
			go hub.Run(context.WithoutCancel(t.Context()))
			t.Cleanup(hub.Close)
			srv := httptest.NewServer(NewSSEHandler(hub, SSEOptions{Logger: discard()}))
			t.Cleanup(srv.Close)

			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Last-Event-ID", "42")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error *taskwire.Error `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == nil {
				t.Fatalf("HTTP %d: want a JSON error object (%v)", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Errorf("HTTP %d code %d, want HTTP %d code %d", resp.StatusCode, body.Error.Code, tc.status, tc.code)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(body.Error.Message, "42") {
				t.Errorf("message %q does not name the id", body.Error.Message)
			}
			if tc.status == http.StatusInternalServerError && strings.Contains(body.Error.Message, "fire") {
				t.Errorf("message %q leaks the cause", body.Error.Message)
			}
		})
	}
}

// A stream the hub ends (a shutdown) ends as a whole HTTP response: the
// client reads to a clean end, not a transfer cut short.
func TestSSEEndsWhole(t *testing.T) {
	t.Parallel()
	hub := NewHub(refusingLog{}, Options{Logger: discard()})
	go hub.Run(context.WithoutCancel(t.Context()))
	srv := httptest.NewServer(NewSSEHandler(hub, SSEOptions{Logger: discard()}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("id: "))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the stream's position: %v", err)
	}
	hub.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("after the hub closed, the stream ended with %v (read %q), want a clean end", err, rest)
	}
}
