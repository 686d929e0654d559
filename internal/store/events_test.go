package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
)

// The events built from structs write the bytes that the same payloads as
// maps write as the server encodes them (taskwire.MarshalJSON): keys
// sorted, invalid UTF-8 replaced alike, <, > and & as they are.
func TestEventStructsMatchMaps(t *testing.T) {
	now := time.Date(2025, 1, 19, 12, 45, 0, 123_000_000, time.UTC)
	tricky := "a <b> & \"c\" \u2028 \xff é"
	task := &taskwire.Task{ID: "t-" + tricky, Text: tricky, Status: taskwire.StatusCompleted,
		Priority: -7, CreatedAt: now, CompletedAt: now.Add(time.Second), DurationMs: 1000}
	cases := []struct {
		name              string
		got               taskwire.Event
		payload, metadata map[string]any
	}{
		{"created", TaskCreatedEvent(task, tricky),
			map[string]any{"id": task.ID, "text": task.Text, "status": task.Status, "priority": task.Priority,
				"createdAt": taskwire.NewTime(task.CreatedAt)},
			map[string]any{"createdBy": tricky}},
		{"claimed", TaskClaimedEvent(task.ID, tricky, now),
			map[string]any{"taskId": task.ID, "workerId": tricky},
			map[string]any{"claimedAt": taskwire.NewTime(now)}},
		{"completed", TaskCompletedEvent(task, tricky),
			map[string]any{"id": task.ID, "status": task.Status, "duration": task.DurationMs},
			map[string]any{"completedBy": tricky}},
	}
	for _, c := range cases {
		p, _ := taskwire.MarshalJSON(c.payload)
		m, _ := taskwire.MarshalJSON(c.metadata)
		if string(c.got.Payload) != string(p) {
			t.Errorf("%s payload:\n got %s\nwant %s", c.name, c.got.Payload, p)
		}
		if string(c.got.Metadata) != string(m) {
			t.Errorf("%s metadata:\n got %s\nwant %s", c.name, c.got.Metadata, m)
		}
	}
}

// A requeue of a task that no worker held names no previous worker: null,
// as task.unassigned writes an empty previous assignment.
func TestTaskRequeuedEventWithoutWorker(t *testing.T) {
	now := time.Date(2025, 1, 19, 12, 45, 0, 0, time.UTC)
	for worker, want := range map[string]any{"": nil, "w1": "w1"} {
		var p map[string]any
		if err := json.Unmarshal(TaskRequeuedEvent("t-1", worker, 1, RequeueUpdate, "ops", now).Payload, &p); err != nil {
			t.Fatal(err)
		}
		if got, ok := p["previousWorker"]; !ok || got != want {
			t.Errorf("previous worker %q: previousWorker %v (present %v), want %v", worker, got, ok, want)
		}
	}
}

// A task.updated payload leaves the result out and flags it, with its
// size, as a task.list row does; a task without a result has neither.
func TestTaskUpdatedEventLeavesResultOut(t *testing.T) {
	now := time.Date(2025, 1, 19, 12, 45, 0, 0, time.UTC)
	for _, c := range []struct {
		size      int64
		truncated any
	}{{100011, true}, {0, nil}} {
		task := &taskwire.Task{ID: "t-1", Status: taskwire.StatusCompleted, ResultSize: c.size}
		if c.size > 0 {
			task.Result = json.RawMessage(`"x"`)
		}
		var p map[string]any
		if err := json.Unmarshal(TaskUpdatedEvent(task, "ops", []string{"text"}, now).Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p["result"] != nil || p["resultTruncated"] != c.truncated {
			t.Errorf("result of %d bytes: result %v, resultTruncated %v; want null, %v", c.size, p["result"], p["resultTruncated"], c.truncated)
		}
		if size, _ := p["resultSize"].(float64); int64(size) != c.size {
			t.Errorf("result of %d bytes: resultSize %v", c.size, p["resultSize"])
		}
	}
}
