package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

func TestCreateDefaults(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t)

	var raw json.RawMessage = call[json.RawMessage](t, b, taskwire.MethodTaskCreate, params{"text": "send the report"})
	var got taskwire.Task
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := taskwire.Task{
		ID: got.ID, Queue: "default", Text: "send the report", Status: taskwire.StatusPending,
		Priority: 50, MaxAttempts: 3, LeaseMs: 300_000,
		RunAt: t0, CreatedAt: t0, UpdatedAt: t0,
	}
	if diff := cmp.Diff(want, got, jsonEq); diff != "" {
		t.Errorf("created task (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.ID, "t-") || len(got.ID) < 12 {
		t.Errorf("id = %q, want t- and a unique id", got.ID)
	}
	// The wire form: empty optional fields are null, timestamps ISO-8601
	// UTC with milliseconds.
	wire := rawObject(t, raw)
	for _, k := range []string{"metadata", "assignedTo", "leaseExpiresAt", "result", "error", "completedAt", "durationMs"} {
		if v, ok := wire[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	for _, k := range []string{"createdAt", "updatedAt", "runAt"} {
		if wire[k] != "2025-01-19T12:00:00.000Z" {
			t.Errorf("%s = %v, want 2025-01-19T12:00:00.000Z", k, wire[k])
		}
	}
	if diff := cmp.Diff(&got, getTask(t, b, got.ID), jsonEq); diff != "" {
		t.Errorf("task.get differs from task.create (-create +get):\n%s", diff)
	}
}

func TestCreateEveryParam(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	runAt := t0.Add(time.Hour)

	got := createTask(t, b, params{
		"text": "resize image", "priority": 7, "metadata": params{"user": "u1", "n": 2},
		"queue": "images.v2_x-y", "runAt": runAt.Format(time.RFC3339Nano),
		"maxAttempts": 5, "leaseMs": 60_000, "idempotencyKey": "k-1",
	})
	want := &taskwire.Task{
		ID: got.ID, Queue: "images.v2_x-y", Text: "resize image", Status: taskwire.StatusPending,
		Priority: 7, Metadata: json.RawMessage(`{"user":"u1","n":2}`), MaxAttempts: 5, LeaseMs: 60_000,
		RunAt: runAt, CreatedAt: t0, UpdatedAt: t0,
	}
	if diff := cmp.Diff(want, got, jsonEq); diff != "" {
		t.Errorf("created task (-want +got):\n%s", diff)
	}

	// delayMs sets runAt from now; the task is not claimable before it.
	delayed := createTask(t, b, params{"text": "later", "delayMs": 1500, "queue": "later"})
	if !delayed.RunAt.Equal(t0.Add(1500 * time.Millisecond)) {
		t.Errorf("runAt with delayMs 1500 = %v, want %v", delayed.RunAt, t0.Add(1500*time.Millisecond))
	}
	register(t, b, "w1", "later", "images.v2_x-y")
	if r := claim(t, b, "w1", nil); r.Claimed {
		t.Fatalf("claimed %s before its runAt", r.TaskID)
	}
	clk.Advance(1500 * time.Millisecond)
	if r := claim(t, b, "w1", nil); !r.Claimed || r.TaskID != delayed.ID {
		t.Fatalf("claim at runAt = %+v, want %s", r, delayed.ID)
	}
	clk.Advance(time.Hour)
	if r := claim(t, b, "w1", nil); !r.Claimed || r.TaskID != got.ID {
		t.Fatalf("claim at runAt = %+v, want %s", r, got.ID)
	}
}

// A runAt in the past makes a task ready at once; it is stored as the
// creation time, so that even the earliest time there is (the zero of Go's
// time.Time) comes back as a timestamp, never null. Lowercase t and z are
// RFC 3339 too.
func TestCreateRunAtForms(t *testing.T) {
	t.Parallel()
	tests := []struct{ runAt, want string }{
		{"0001-01-01T00:00:00Z", "2025-01-19T12:00:00.000Z"},
		{"1969-12-31T23:59:59.999Z", "2025-01-19T12:00:00.000Z"},
		{"2025-01-19T11:59:59.999Z", "2025-01-19T12:00:00.000Z"},
		{"2025-01-19t12:00:01.5z", "2025-01-19T12:00:01.500Z"},
	}
	for _, tt := range tests {
		t.Run(tt.runAt, func(t *testing.T) {
			t.Parallel()
			b, _ := withFakeClock(t)
			raw := call[json.RawMessage](t, b, taskwire.MethodTaskCreate, params{"text": "x", "runAt": tt.runAt})
			if got := rawObject(t, raw)["runAt"]; got != tt.want {
				t.Errorf("runAt %v, want %s", got, tt.want)
			}
		})
	}
}

func TestCreateBounds(t *testing.T) {
	t.Parallel()
	meta := func(n int) json.RawMessage { // an object of exactly n bytes
		return json.RawMessage(`{"k":"` + strings.Repeat("x", n-8) + `"}`)
	}
	tests := []struct {
		name   string
		params params
		field  string // "" when the create must succeed
	}{
		// text: 1..500 characters, counted as characters, not bytes.
		{"text empty", params{"text": ""}, "text"},
		{"text 1 char", params{"text": "x"}, ""},
		{"text 500 ascii", params{"text": strings.Repeat("a", 500)}, ""},
		{"text 501 ascii", params{"text": strings.Repeat("a", 501)}, "text"},
		{"text 500 two-byte chars", params{"text": strings.Repeat("é", 500)}, ""},
		{"text 500 four-byte chars", params{"text": strings.Repeat("😀", 500)}, ""},
		{"text 501 two-byte chars", params{"text": strings.Repeat("é", 501)}, "text"},
		{"text missing", params{"priority": 1}, "text"},
		{"text a number", params{"text": 5}, "text"},
		{"text null", params{"text": nil}, "text"},
		// priority: 0..100, an integer.
		{"priority 0", params{"text": "x", "priority": 0}, ""},
		{"priority 100", params{"text": "x", "priority": 100}, ""},
		{"priority -1", params{"text": "x", "priority": -1}, "priority"},
		{"priority 101", params{"text": "x", "priority": 101}, "priority"},
		{"priority fraction", params{"text": "x", "priority": 1.5}, "priority"},
		{"priority a string", params{"text": "x", "priority": "50"}, "priority"},
		// queue: [a-z0-9_.-]{1,64}.
		{"queue 64 chars", params{"text": "x", "queue": strings.Repeat("q", 64)}, ""},
		{"queue 65 chars", params{"text": "x", "queue": strings.Repeat("q", 65)}, "queue"},
		{"queue empty", params{"text": "x", "queue": ""}, "queue"},
		{"queue upper case", params{"text": "x", "queue": "Emails"}, "queue"},
		{"queue with space", params{"text": "x", "queue": "a b"}, "queue"},
		{"queue with slash", params{"text": "x", "queue": "a/b"}, "queue"},
		{"queue a number", params{"text": "x", "queue": 7}, "queue"},
		// maxAttempts: 1..100.
		{"maxAttempts 1", params{"text": "x", "maxAttempts": 1}, ""},
		{"maxAttempts 100", params{"text": "x", "maxAttempts": 100}, ""},
		{"maxAttempts 0", params{"text": "x", "maxAttempts": 0}, "maxAttempts"},
		{"maxAttempts 101", params{"text": "x", "maxAttempts": 101}, "maxAttempts"},
		{"maxAttempts a bool", params{"text": "x", "maxAttempts": true}, "maxAttempts"},
		// metadata: an object (or null), nothing else.
		{"metadata null", params{"text": "x", "metadata": nil}, ""},
		{"metadata an array", params{"text": "x", "metadata": []int{1}}, "metadata"},
		{"metadata a string", params{"text": "x", "metadata": "m"}, "metadata"},
		{"metadata a number", params{"text": "x", "metadata": 1}, "metadata"},
		{"metadata 64 KiB", params{"text": "x", "metadata": meta(taskwire.MaxMetadataBytes)}, ""},
		// runAt and delayMs.
		{"runAt not a time", params{"text": "x", "runAt": "tomorrow"}, "runAt"},
		{"runAt a number", params{"text": "x", "runAt": 1700000000}, "runAt"},
		{"runAt and delayMs", params{"text": "x", "runAt": "2025-01-19T12:00:00Z", "delayMs": 10}, "delayMs"},
		{"delayMs negative", params{"text": "x", "delayMs": -1}, "delayMs"},
		{"delayMs a string", params{"text": "x", "delayMs": "10"}, "delayMs"},
		// leaseMs.
		{"leaseMs a string", params{"text": "x", "leaseMs": "1m"}, "leaseMs"},
		{"leaseMs 0", params{"text": "x", "leaseMs": 0}, "leaseMs"},
		// idempotencyKey.
		{"idempotencyKey a number", params{"text": "x", "idempotencyKey": 1}, "idempotencyKey"},
		// Unknown params are rejected, named.
		{"unknown param", params{"text": "x", "colour": "red"}, "colour"},
		{"snake case param", params{"text": "x", "max_attempts": 2}, "max_attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tt.field == "" {
				got := call[*taskwire.Task](t, b, taskwire.MethodTaskCreate, tt.params)
				if got.Status != taskwire.StatusPending || got.Text != tt.params["text"] {
					t.Errorf("created %+v", got)
				}
				if n := taskCount(t, b); n != 1 {
					t.Errorf("%d tasks, want 1", n)
				}
				return
			}
			wantInvalid(t, b, taskwire.MethodTaskCreate, tt.params, tt.field)
			if n := taskCount(t, b); n != 0 {
				t.Errorf("a rejected create made %d tasks", n)
			}
		})
	}
}

func TestCreateMetadataTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := json.RawMessage(`{"k":"` + strings.Repeat("x", taskwire.MaxMetadataBytes-8+1) + `"}`)
	wantCodeData(t, b, taskwire.MethodTaskCreate, params{"text": "x", "metadata": big},
		taskwire.CodeTooLarge, map[string]any{"field": "metadata", "limit": taskwire.MaxMetadataBytes})
	if n := taskCount(t, b); n != 0 {
		t.Errorf("a rejected create made %d tasks", n)
	}
}

func TestCreateInvalidUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		field string
	}{
		// A byte that starts no UTF-8 sequence.
		{"text", `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"a` + "\xff" + `b"}}`, "text"},
		// A truncated two-byte sequence.
		{"queue", `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"ok","queue":"q` + "\xc3" + `"}}`, "queue"},
		// Deep inside metadata.
		{"metadata", `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"ok","metadata":{"a":"` + "\xed\xa0\x80" + `"}}}`, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			status, raw := post(t, b, tt.body)
			if status != 200 {
				t.Errorf("HTTP %d, want 200", status)
			}
			var resp struct {
				ID    int             `json:"id"`
				Error *taskwire.Error `json:"error"`
			}
			if err := json.Unmarshal(raw, &resp); err != nil || resp.Error == nil {
				t.Fatalf("want an error response, got %s (%v)", clipText(string(raw)), err)
			}
			if resp.ID != 1 {
				t.Errorf("id = %d, want 1", resp.ID)
			}
			checkInvalid(t, resp.Error, tt.field)
			if n := taskCount(t, b); n != 0 {
				t.Errorf("a rejected create made %d tasks", n)
			}
		})
	}
}

func TestCreateIdempotencyKey(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)

	first := createTask(t, b, params{"text": "charge card", "idempotencyKey": "order-42"})
	clk.Advance(time.Minute)
	// A second create with the key returns the first task unchanged, even
	// when every other param differs.
	again := createTask(t, b, params{"text": "something else", "priority": 99,
		"queue": "other", "idempotencyKey": "order-42"})
	if diff := cmp.Diff(first, again, jsonEq); diff != "" {
		t.Errorf("second create with the key (-first +second):\n%s", diff)
	}
	if n := taskCount(t, b); n != 1 {
		t.Errorf("%d tasks after two creates with one key, want 1", n)
	}
	// Another key, and no key, create.
	other := createTask(t, b, params{"text": "charge card", "idempotencyKey": "order-43"})
	plain := createTask(t, b, params{"text": "charge card"})
	if other.ID == first.ID || plain.ID == first.ID || plain.ID == other.ID {
		t.Errorf("ids %s %s %s, want three tasks", first.ID, other.ID, plain.ID)
	}
	if n := taskCount(t, b); n != 3 {
		t.Errorf("%d tasks, want 3", n)
	}
	// The key still returns the first task after it changed state, and the
	// task as it is now.
	register(t, b, "w1")
	claimed := claim(t, b, "w1", params{"maxTasks": 10})
	if len(claimed.Tasks) != 3 {
		t.Fatalf("claimed %d tasks, want 3", len(claimed.Tasks))
	}
	later := createTask(t, b, params{"text": "charge card", "idempotencyKey": "order-42"})
	if later.ID != first.ID || later.Status != taskwire.StatusInProgress {
		t.Errorf("create with a used key = %s %s, want %s in_progress", later.ID, later.Status, first.ID)
	}
	if n := taskCount(t, b); n != 3 {
		t.Errorf("%d tasks, want 3", n)
	}
}

func TestCreateIDsUniqueAndSorted(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t) // one millisecond for all: ids must still sort
	var prev string
	for i := 0; i < 50; i++ {
		id := createTask(t, b, nil).ID
		if id <= prev {
			t.Fatalf("id %s after %s: want increasing ids", id, prev)
		}
		prev = id
	}
}
