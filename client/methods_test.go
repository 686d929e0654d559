package client_test

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// TestTaskLifecycle drives every task method through the typed API.
func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, cx := b.c, ctx(t)

	if _, err := c.Register(cx, taskwire.RegisterParams{ID: "w1", Queues: []string{"mail"}}); err != nil {
		t.Fatal(err)
	}
	task := create(t, b, taskwire.CreateParams{Text: "send mail", Queue: "mail", Priority: client.Ptr(70),
		Metadata: json.RawMessage(`{"to":"a@example.com"}`)})
	if task.Status != taskwire.StatusPending || task.Priority != 70 || task.Queue != "mail" {
		t.Fatalf("created %+v", task)
	}

	claim, err := c.ClaimTasks(cx, taskwire.ClaimParams{WorkerID: "w1"})
	if err != nil || !claim.Claimed || claim.TaskID != task.ID || claim.Task.Attempt != 1 {
		t.Fatalf("claim = %+v, %v", claim, err)
	}
	upd, err := c.UpdateTask(cx, taskwire.UpdateParams{ID: task.ID, WorkerID: "w1", Attempt: client.Ptr(1),
		Updates: taskwire.TaskUpdates{Metadata: json.RawMessage(`{"progress":50}`)}})
	if err != nil || string(upd.Metadata) != `{"progress":50,"to":"a@example.com"}` {
		t.Fatalf("update = %s, %v", upd.Metadata, err)
	}
	if hb, err := c.Heartbeat(cx, "w1"); err != nil || !hb.Alive {
		t.Fatalf("heartbeat = %+v, %v", hb, err)
	}
	ws, err := c.Workers(cx)
	if err != nil || len(ws.Workers) != 1 || len(ws.Workers[0].Tasks) != 1 {
		t.Fatalf("workers = %+v, %v", ws, err)
	}

	done, err := c.CompleteTask(cx, taskwire.CompleteParams{ID: task.ID, WorkerID: "w1", Attempt: client.Ptr(1),
		Result: json.RawMessage(`{"sent":true}`)})
	if err != nil || done.Status != taskwire.StatusCompleted {
		t.Fatalf("complete = %+v, %v", done, err)
	}
	if got := get(t, b, task.ID); string(got.Result) != `{"sent":true}` {
		t.Fatalf("result = %s", got.Result)
	}
	rc, size, err := c.OpenResult(cx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	if string(raw) != `{"sent":true}` || size != int64(len(raw)) {
		t.Fatalf("streamed result %q (size %d)", raw, size)
	}

	list, err := c.ListTasks(cx, taskwire.ListParams{Status: taskwire.StatusCompleted})
	if err != nil || list.TotalCount != 1 || list.Tasks[0].ID != task.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := c.DeleteTask(cx, task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTask(cx, task.ID); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want not found", err)
	}
	if r, err := c.Unregister(cx, "w1"); err != nil || !r.Unregistered {
		t.Fatalf("unregister = %+v, %v", r, err)
	}
}

// TestAssignAndUnassign reserves a task for a worker and takes it back.
func TestAssignAndUnassign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, cx := b.c, ctx(t)
	if _, err := c.Register(cx, taskwire.RegisterParams{ID: "w1"}); err != nil {
		t.Fatal(err)
	}
	task := create(t, b, taskwire.CreateParams{Text: "reserved"})
	if r, err := c.AssignTask(cx, taskwire.AssignParams{TaskID: task.ID, WorkerID: "w1"}); err != nil || r.WorkerID != "w1" {
		t.Fatalf("assign = %+v, %v", r, err)
	}
	r, err := c.UnassignTask(cx, task.ID)
	if err != nil || r.PreviousAssignment == nil || *r.PreviousAssignment != "w1" {
		t.Fatalf("unassign = %+v, %v", r, err)
	}
}

// TestErrors checks that server errors keep their code, message and data
// and that the helpers read them.
func TestErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, cx := b.c, ctx(t)

	_, err := c.GetTask(cx, "t-missing")
	var e *client.Error
	if !client.IsNotFound(err) || !errorsAs(err, &e) || e.Code != taskwire.CodeInvalidParams ||
		e.Message != "Task not found: t-missing" || string(e.Data) != `{"taskId":"t-missing"}` {
		t.Fatalf("get missing: %#v", err)
	}
	if e.Method != taskwire.MethodTaskGet {
		t.Errorf("method = %q", e.Method)
	}

	_, err = c.ClaimTasks(cx, taskwire.ClaimParams{WorkerID: "nobody"})
	if !client.IsNotRegistered(err) || client.IsNotFound(err) {
		t.Fatalf("claim by unknown worker: %v", err)
	}

	task := create(t, b, taskwire.CreateParams{Text: "never claimed"})
	_, err = c.CompleteTask(cx, taskwire.CompleteParams{ID: task.ID, Result: json.RawMessage(`1`)})
	if !client.IsConflict(err) {
		t.Fatalf("complete unassigned: %v, want conflict", err)
	}
	var data struct {
		TaskID string          `json:"taskId"`
		Status taskwire.Status `json:"status"`
	}
	if err := err.(*client.Error).DecodeData(&data); err != nil || data.TaskID != task.ID || data.Status != taskwire.StatusPending {
		t.Fatalf("conflict data %+v, %v", data, err)
	}

	_, err = c.CreateTask(cx, taskwire.CreateParams{Text: ""})
	if client.CodeOf(err) != taskwire.CodeInvalidParams {
		t.Fatalf("empty text: %v", err)
	}
	if _, ok := client.RetryAfter(err); ok {
		t.Fatal("RetryAfter of a validation error")
	}
}

// TestDiscoverAndSystem covers the read-only system calls.
func TestDiscoverAndSystem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, cx := b.c, ctx(t)
	h, err := c.Health(cx)
	if err != nil || h.Status != "ok" || h.Version != "test" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	create(t, b, taskwire.CreateParams{Text: "counted"})
	m, err := c.Metrics(cx)
	if err != nil || m.ByStatus[taskwire.StatusPending] != 1 {
		t.Fatalf("metrics = %+v, %v", m, err)
	}
	doc, err := c.Discover(cx)
	var d struct {
		Methods []struct{ Name string } `json:"methods"`
	}
	if err != nil || json.Unmarshal(doc, &d) != nil || len(d.Methods) < 15 {
		t.Fatalf("discover: %d methods, %v", len(d.Methods), err)
	}
}
