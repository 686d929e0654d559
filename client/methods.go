package client

import (
	"context"
	"encoding/json"

	"github.com/taskwire/taskwire"
)

// One method per JSON-RPC method of SPEC section 4. Each retries (see
// Options) only when a second attempt cannot do anything the first did
// not: creates that carry an idempotency key, completions (a repeated
// completion answers as the first), registrations and heartbeats (they
// refresh), and the read-only calls. Claims are retried only when the
// server refused them (-32000, -32001).

// CreateTask creates a task (task.create). It is retried only when
// p.IdempotencyKey is set: the server then creates at most one task.
func (c *Client) CreateTask(ctx context.Context, p taskwire.CreateParams) (*taskwire.Task, error) {
	return call[taskwire.Task](ctx, c, taskwire.MethodTaskCreate, p, resendIf(p.IdempotencyKey != ""))
}

// ClaimTasks claims up to p.MaxTasks ready tasks for worker p.WorkerID
// (task.claim), waiting up to p.WaitMs for one. Claimed is false when none
// was ready. It is retried only when the server refused it (-32000,
// -32001): after a failed connection the claim may have taken tasks that
// are now held for the worker (task.list with Status in_progress and
// AssignedTo the worker finds them), and the error is returned.
func (c *Client) ClaimTasks(ctx context.Context, p taskwire.ClaimParams) (*taskwire.ClaimResult, error) {
	return call[taskwire.ClaimResult](ctx, c, taskwire.MethodTaskClaim, p, onRefusal)
}

// UpdateTask changes the given fields of a task (task.update); a call by
// the assigned worker renews its lease. It is not retried.
func (c *Client) UpdateTask(ctx context.Context, p taskwire.UpdateParams) (*taskwire.Task, error) {
	return call[taskwire.Task](ctx, c, taskwire.MethodTaskUpdate, p, sendOnce)
}

// CompleteTask completes a task with p.Result, or fails it with p.Error
// (task.complete). Set p.Attempt to the attempt claimed so that a stale
// worker is refused (-32003).
func (c *Client) CompleteTask(ctx context.Context, p taskwire.CompleteParams) (*taskwire.CompleteResult, error) {
	return call[taskwire.CompleteResult](ctx, c, taskwire.MethodTaskComplete, p, onFailure)
}

// GetTask returns a task with its whole result (task.get). A missing task
// is an error for which IsNotFound is true.
func (c *Client) GetTask(ctx context.Context, id string) (*taskwire.Task, error) {
	return call[taskwire.Task](ctx, c, taskwire.MethodTaskGet, taskwire.GetParams{ID: id}, onFailure)
}

// ListTasks returns a page of tasks (task.list).
func (c *Client) ListTasks(ctx context.Context, p taskwire.ListParams) (*taskwire.ListResult, error) {
	return call[taskwire.ListResult](ctx, c, taskwire.MethodTaskList, p, onFailure)
}

// AssignTask reserves a pending task for one worker (task.assign, admin).
func (c *Client) AssignTask(ctx context.Context, p taskwire.AssignParams) (*taskwire.AssignResult, error) {
	return call[taskwire.AssignResult](ctx, c, taskwire.MethodTaskAssign, p, sendOnce)
}

// UnassignTask clears a task's assignment; an in-progress task goes back
// to pending (task.unassign, admin).
func (c *Client) UnassignTask(ctx context.Context, taskID string) (*taskwire.UnassignResult, error) {
	return call[taskwire.UnassignResult](ctx, c, taskwire.MethodTaskUnassign, taskwire.UnassignParams{TaskID: taskID}, sendOnce)
}

// DeleteTask deletes a task and its result (task.delete, admin).
func (c *Client) DeleteTask(ctx context.Context, id string) (*taskwire.DeleteResult, error) {
	return call[taskwire.DeleteResult](ctx, c, taskwire.MethodTaskDelete, taskwire.DeleteParams{ID: id}, sendOnce)
}

// Register registers (or refreshes) a worker (system.register); the result
// says how often to heartbeat.
func (c *Client) Register(ctx context.Context, p taskwire.RegisterParams) (*taskwire.RegisterResult, error) {
	return call[taskwire.RegisterResult](ctx, c, taskwire.MethodSystemRegister, p, onFailure)
}

// Heartbeat tells the server the worker is alive and renews the leases of
// all its in-progress tasks (system.heartbeat). Alive is false when the
// worker had gone offline: it must register again.
func (c *Client) Heartbeat(ctx context.Context, workerID string) (*taskwire.HeartbeatResult, error) {
	return call[taskwire.HeartbeatResult](ctx, c, taskwire.MethodSystemHeartbeat, taskwire.HeartbeatParams{WorkerID: workerID}, onFailure)
}

// Unregister removes a worker; its in-progress tasks go back to the queue
// at once, but for those on their last attempt, which fail
// (system.unregister). It is not retried.
func (c *Client) Unregister(ctx context.Context, workerID string) (*taskwire.UnregisterResult, error) {
	return call[taskwire.UnregisterResult](ctx, c, taskwire.MethodSystemUnregister, taskwire.UnregisterParams{WorkerID: workerID}, sendOnce)
}

// Workers lists the registered workers (system.workers).
func (c *Client) Workers(ctx context.Context) (*taskwire.WorkersResult, error) {
	return call[taskwire.WorkersResult](ctx, c, taskwire.MethodSystemWorkers, struct{}{}, onFailure)
}

// Health reports the server's state and backends (system.health).
func (c *Client) Health(ctx context.Context) (*taskwire.HealthResult, error) {
	return call[taskwire.HealthResult](ctx, c, taskwire.MethodSystemHealth, struct{}{}, onFailure)
}

// Metrics returns task counts and rates (system.metrics).
func (c *Client) Metrics(ctx context.Context) (*taskwire.MetricsResult, error) {
	return call[taskwire.MetricsResult](ctx, c, taskwire.MethodSystemMetrics, struct{}{}, onFailure)
}

// Discover returns the server's OpenRPC document (rpc.discover).
func (c *Client) Discover(ctx context.Context) (json.RawMessage, error) {
	var r json.RawMessage
	if err := c.call(ctx, taskwire.MethodDiscover, struct{}{}, &r, onFailure); err != nil {
		return nil, err
	}
	return r, nil
}

// call calls method and returns its result, or nil and the error.
func call[T any](ctx context.Context, c *Client, method string, params any, r resend) (*T, error) {
	var v T
	if err := c.call(ctx, method, params, &v, r); err != nil {
		return nil, err
	}
	return &v, nil
}

// Ptr returns a pointer to v, for the optional fields of params:
// taskwire.CreateParams{Text: "x", Priority: client.Ptr(80)}.
func Ptr[T any](v T) *T { return &v }
