package events

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// FuzzSSEQuery feeds any query string and Last-Event-ID header to GET
// /events over a SQLite log holding three events. It never panics or
// hangs; the answer is either a stream that begins with its position, an
// ID the log issued on a line of its own, or HTTP 400 with a -32602
// JSON-RPC error object: bad input is never a 500. Seeds:
// testdata/fuzz/FuzzSSEQuery.
func FuzzSSEQuery(f *testing.F) {
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "taskwire.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	fx := &fixture{st: st}
	for range 3 {
		fx.create(f)
	}
	hub := NewHub(st, Options{Logger: discard()})
	go hub.Run(context.Background())
	f.Cleanup(hub.Close)
	h := NewSSEHandler(hub, SSEOptions{Logger: discard()})

	f.Fuzz(func(t *testing.T, query, lastEventID string) {
		if !validHeaderValue(lastEventID) {
			return // the HTTP server refuses such a header before any handler
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/events", RawQuery: query},
			Header: http.Header{}}).WithContext(ctx)
		if v := strings.Trim(lastEventID, " \t"); v != "" {
			r.Header.Set("Last-Event-ID", v)
		}
		// The stream ends at its first flush: its position is all there
		// is to check.
		w := &flushCancel{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			checkPosition(t, w.Body.String())
		case http.StatusBadRequest:
			checkRefusal(t, r, w.Body.Bytes())
		default:
			t.Fatalf("query %q, Last-Event-ID %q: HTTP %d %s", query, lastEventID, w.Code, w.Body)
		}
	})
}

// flushCancel is a response recorder that cancels the request at the
// first flush.
type flushCancel struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *flushCancel) Flush() {
	w.ResponseRecorder.Flush()
	w.cancel()
}

// validHeaderValue reports whether net/http reads v as a header value:
// no control character but the tab.
func validHeaderValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// checkPosition checks that a stream begins with "id: ID" and a blank
// line, ID the decimal form of an event ID or "0".
func checkPosition(t *testing.T, body string) {
	t.Helper()
	id, ok := strings.CutPrefix(body, "id: ")
	if ok {
		id, _, ok = strings.Cut(id, "\n\n")
	}
	if !ok || id == "" || strings.Trim(id, "0123456789") != "" {
		t.Fatalf("stream begins %q, want its position", body)
	}
}

// checkRefusal checks that an HTTP 400 carries a -32602 naming what the
// request got wrong: an unknown type it asked for, or its resume point.
func checkRefusal(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	var resp struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *taskwire.Error `json:"error"`
		ID      any             `json:"id"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.JSONRPC != "2.0" || resp.Error == nil || resp.ID != nil {
		t.Fatalf("HTTP 400 body %q is not a JSON-RPC error (%v)", body, err)
	}
	data, _ := resp.Error.Data.(map[string]any)
	if resp.Error.Code != taskwire.CodeInvalidParams || data["validation"] == nil {
		t.Fatalf("HTTP 400 with %+v, want a -32602", resp.Error)
	}
	if typ, ok := data["type"].(string); ok {
		var asked []string
		for _, v := range r.URL.Query()["types"] {
			for s := range strings.SplitSeq(v, ",") {
				asked = append(asked, jsonString(strings.TrimSpace(s)))
			}
		}
		// The type is named as JSON holds it: invalid UTF-8 replaced.
		if !slices.Contains(asked, typ) || slices.Contains(taskwire.EventTypes, taskwire.EventType(typ)) {
			t.Fatalf("refused type %q, asked for %q", typ, asked)
		}
	}
}

// jsonString returns s as it reads back from JSON.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &s)
	return s
}
