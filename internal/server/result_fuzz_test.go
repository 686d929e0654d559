package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// FuzzResultID asks GET /v1/tasks/{id}/result and task.get about any id
// on a server that holds no task. Both refuse it with the same -32602:
// the endpoint with HTTP 404 for "Task not found", HTTP 400 for an id
// task.get refuses for its form; never a 500, in any mode. Seeds:
// testdata/fuzz/FuzzResultID.
func FuzzResultID(f *testing.F) {
	h := setup(f).srv.Handler()
	// routes tells the ids the endpoint is asked about: net/http's mux
	// redirects a path with "." or ".." segments, and answers a segment
	// "%2F" with its own 404 page, as for any path that is no endpoint.
	routes := http.NewServeMux()
	routes.HandleFunc("GET /v1/tasks/{id}/result", func(http.ResponseWriter, *http.Request) {})
	f.Fuzz(func(t *testing.T, id string) {
		if id == "" || id == "." || id == ".." {
			return // no path names these
		}
		if _, pattern := routes.Handler(resultRequest(id)); pattern == "" {
			return
		}
		status, got := resultError(t, h, id)
		want := taskGetError(t, h, id)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("result of %q: error (-task.get +endpoint):\n%s", id, diff)
		}
		wantStatus := http.StatusBadRequest
		if strings.HasPrefix(want.Message, "Task not found: ") {
			wantStatus = http.StatusNotFound
		}
		if status != wantStatus {
			t.Fatalf("result of %q: HTTP %d, want %d with %+v", id, status, wantStatus, got)
		}
	})
}

// resultError returns the status and JSON-RPC error of GET
// /v1/tasks/{id}/result.
func resultError(t *testing.T, h http.Handler, id string) (int, *taskwire.Error) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, resultRequest(id))
	var resp struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *taskwire.Error `json:"error"`
		ID      any             `json:"id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.JSONRPC != "2.0" || resp.Error == nil || resp.ID != nil {
		t.Fatalf("result of %q: HTTP %d %q is not a JSON-RPC error (%v)", id, w.Code, w.Body, err)
	}
	return w.Code, resp.Error
}

// resultRequest returns the request GET /v1/tasks/{id}/result.
func resultRequest(id string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "http://127.0.0.1/v1/tasks/"+url.PathEscape(id)+"/result", nil)
}

// taskGetError returns the JSON-RPC error of task.get {id}, the id's
// bytes sent as they are.
func taskGetError(t *testing.T, h http.Handler, id string) *taskwire.Error {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":` + rawJSONString(id) + `}}`
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "http://127.0.0.1/rpc", strings.NewReader(body)))
	var resp struct {
		Error *taskwire.Error `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Error == nil {
		t.Fatalf("task.get %q: HTTP %d %q, want an error (%v)", id, w.Code, w.Body, err)
	}
	return resp.Error
}

// rawJSONString quotes s as a JSON string that keeps its bytes, invalid
// UTF-8 included (encoding/json would replace those).
func rawJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
