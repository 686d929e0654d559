package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// Tests of GET /v1/tasks/{id}/events.

// taskEventsOf gets path and decodes its {"events": [...]}, failing the
// test unless the answer is 200 with a list.
func taskEventsOf(tb testing.TB, b *bundle, path string) []map[string]any {
	tb.Helper()
	resp, body := httpGet(tb, b, path)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: HTTP %d %s", path, resp.StatusCode, clipText(string(body)))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	var out struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Events == nil {
		tb.Fatalf("GET %s: body %s, want {\"events\": [...]} (%v)", path, clipText(string(body)), err)
	}
	return out.Events
}

func TestTaskEventsHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := claimed(t, b, "w1")
	other := createTask(t, b, nil) // an event of another task, in between
	completeRaw(t, b, task.ID, "w1", []byte(`"done"`))

	evs := taskEventsOf(t, b, "/v1/tasks/"+task.ID+"/events")
	var types []string
	for _, e := range evs {
		types = append(types, e["type"].(string))
		for _, k := range []string{"id", "type", "payload", "metadata", "timestamp"} {
			if _, ok := e[k]; !ok {
				t.Errorf("event %v: no %q in the envelope", e, k)
			}
		}
		if p, _ := e["payload"].(map[string]any); p == nil || (p["id"] != task.ID && p["taskId"] != task.ID) {
			t.Errorf("event %v: payload does not name task %s", e, task.ID)
		}
	}
	want := []string{string(taskwire.EventTaskCreated), string(taskwire.EventTaskClaimed), string(taskwire.EventTaskCompleted)}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
	// The limit keeps the oldest.
	if got := taskEventsOf(t, b, "/v1/tasks/"+task.ID+"/events?limit=2"); len(got) != 2 || got[1]["id"] != evs[1]["id"] {
		t.Errorf("limit=2: %v, want the first two of %v", got, evs)
	}
	if got := taskEventsOf(t, b, "/v1/tasks/"+other.ID+"/events"); len(got) != 1 || got[0]["type"] != string(taskwire.EventTaskCreated) {
		t.Errorf("other task: %v, want its creation only", got)
	}
	if got := taskEventsOf(t, b, "/v1/tasks/no-such-task/events"); len(got) != 0 {
		t.Errorf("unknown task: %v, want an empty list", got)
	}
}

func TestTaskEventsBadLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := createTask(t, b, nil)
	for _, q := range []string{"limit=0", "limit=-1", "limit=10001", "limit=x", "limit=", "limit=1.5"} {
		resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/events?"+q)
		wantParamsRefused(t, "?"+q, resp.StatusCode, body, "limit")
	}
	if got := taskEventsOf(t, b, "/v1/tasks/"+task.ID+"/events?limit=10000"); len(got) != 1 {
		t.Errorf("limit=10000: %d events, want 1", len(got))
	}
}

// An id no task can have is HTTP 400 with the -32602 of task.get, as for
// GET /v1/tasks/{id}/result.
func TestTaskEventsBadID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"%ff", strings.Repeat("t", 129), "a%00b"} {
		resp, body := httpGet(t, b, "/v1/tasks/"+id+"/events")
		wantParamsRefused(t, clipText(id), resp.StatusCode, body, "id")
	}
}
