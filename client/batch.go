package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/taskwire/taskwire"
)

// Batch collects calls and sends them as one JSON-RPC batch (one HTTP
// request). Add calls with its methods, call Send, then read each call's
// outcome from the Result it returned. A Batch is not safe for concurrent
// use and is sent once.
type Batch struct {
	c     *Client
	calls []*batchCall
	sent  bool
}

// batchCall is one call of a batch and, once sent, its outcome.
type batchCall struct {
	method string
	params any
	resend resend
	out    any
	err    error
	done   bool
}

// Result is the outcome of one call of a batch.
type Result[T any] struct {
	call *batchCall
	v    T
}

// ErrNotSent is the error of a Result whose batch has not been sent.
var ErrNotSent = errors.New("the batch has not been sent")

// Get returns the call's result, or its error (an *Error for a JSON-RPC
// error).
func (r *Result[T]) Get() (*T, error) {
	switch {
	case !r.call.done:
		return nil, ErrNotSent
	case r.call.err != nil:
		return nil, r.call.err
	}
	return &r.v, nil
}

// NewBatch returns an empty batch.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// Len returns the number of calls in the batch.
func (b *Batch) Len() int { return len(b.calls) }

// add appends a call whose result decodes into a T.
func add[T any](b *Batch, method string, params any, again resend) *Result[T] {
	r := &Result[T]{}
	r.call = &batchCall{method: method, params: params, resend: again, out: &r.v}
	b.calls = append(b.calls, r.call)
	return r
}

// CreateTask adds a task.create (see Client.CreateTask).
func (b *Batch) CreateTask(p taskwire.CreateParams) *Result[taskwire.Task] {
	return add[taskwire.Task](b, taskwire.MethodTaskCreate, p, resendIf(p.IdempotencyKey != ""))
}

// ClaimTasks adds a task.claim (see Client.ClaimTasks).
func (b *Batch) ClaimTasks(p taskwire.ClaimParams) *Result[taskwire.ClaimResult] {
	return add[taskwire.ClaimResult](b, taskwire.MethodTaskClaim, p, onRefusal)
}

// UpdateTask adds a task.update (see Client.UpdateTask).
func (b *Batch) UpdateTask(p taskwire.UpdateParams) *Result[taskwire.Task] {
	return add[taskwire.Task](b, taskwire.MethodTaskUpdate, p, sendOnce)
}

// CompleteTask adds a task.complete (see Client.CompleteTask).
func (b *Batch) CompleteTask(p taskwire.CompleteParams) *Result[taskwire.CompleteResult] {
	return add[taskwire.CompleteResult](b, taskwire.MethodTaskComplete, p, onFailure)
}

// GetTask adds a task.get (see Client.GetTask).
func (b *Batch) GetTask(id string) *Result[taskwire.Task] {
	return add[taskwire.Task](b, taskwire.MethodTaskGet, taskwire.GetParams{ID: id}, onFailure)
}

// ListTasks adds a task.list (see Client.ListTasks).
func (b *Batch) ListTasks(p taskwire.ListParams) *Result[taskwire.ListResult] {
	return add[taskwire.ListResult](b, taskwire.MethodTaskList, p, onFailure)
}

// DeleteTask adds a task.delete (see Client.DeleteTask).
func (b *Batch) DeleteTask(id string) *Result[taskwire.DeleteResult] {
	return add[taskwire.DeleteResult](b, taskwire.MethodTaskDelete, taskwire.DeleteParams{ID: id}, sendOnce)
}

// Send sends every call in one request and records each outcome (a batch
// of one call goes as a plain request; an empty batch sends nothing). Calls
// that are safe to retry and failed with -32000 or -32001 are sent again,
// together, as the Client's retry settings allow. Send returns an error
// only when the request itself failed (no call has an answer then); the
// calls' own errors are in their Results.
func (b *Batch) Send(ctx context.Context) error {
	if b.sent {
		return errors.New("batch already sent")
	}
	b.sent = true
	switch len(b.calls) {
	case 0:
		return nil
	case 1:
		return b.sendAlone(ctx)
	}
	pending := b.calls
	for attempt := 1; ; attempt++ {
		err := b.c.sendBatch(ctx, pending)
		if err != nil {
			if allResend(pending) && attempt < b.c.opts.MaxAttempts && retryable(ctx, err) && b.c.sleep(ctx, b.c.backoff(attempt, err)) {
				continue
			}
			for _, c := range pending {
				c.err, c.done = err, true
			}
			return err
		}
		var again []*batchCall
		var wait error
		for _, c := range pending {
			if c.resend != sendOnce && c.err != nil && (IsRateLimited(c.err) || IsUnavailable(c.err)) {
				again = append(again, c)
				wait = longerWait(wait, c.err)
			}
		}
		if len(again) == 0 || attempt >= b.c.opts.MaxAttempts || !b.c.sleep(ctx, b.c.backoff(attempt, wait)) {
			return nil
		}
		pending = again
	}
}

// sendAlone sends the only call of a batch as a plain request.
func (b *Batch) sendAlone(ctx context.Context) error {
	c := b.calls[0]
	c.err = b.c.call(ctx, c.method, c.params, c.out, c.resend)
	c.done = true
	var e *Error
	if c.err != nil && !errors.As(c.err, &e) {
		return c.err
	}
	return nil
}

// longerWait returns whichever of a and b asks for the longer retry wait.
func longerWait(a, b error) error {
	da, _ := RetryAfter(a)
	if db, _ := RetryAfter(b); a == nil || db > da {
		return b
	}
	return a
}

// allResend reports whether every call may be sent again after a failed
// connection.
func allResend(calls []*batchCall) bool {
	for _, c := range calls {
		if c.resend != onFailure {
			return false
		}
	}
	return true
}

// sendBatch posts calls as one batch and records each answer; the id of
// each request is its index in calls.
func (c *Client) sendBatch(ctx context.Context, calls []*batchCall) error {
	reqs := make([]request, len(calls))
	for i, call := range calls {
		reqs[i] = request{JSONRPC: "2.0", ID: int64(i), Method: call.method, Params: call.params}
	}
	body, err := taskwire.MarshalJSON(reqs)
	if err != nil {
		return fmt.Errorf("batch: encode params: %w", err)
	}
	raw, err := c.post(ctx, body)
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	var resps []response
	if err := json.Unmarshal(raw, &resps); err != nil {
		// A batch refused as a whole comes back as one error object.
		var one response
		if json.Unmarshal(raw, &one) == nil && one.Error != nil {
			return one.Error.err("")
		}
		return fmt.Errorf("batch: undecodable response %.200q: %w", raw, err)
	}
	for _, call := range calls {
		call.err, call.done = errNoResponse, true
	}
	for _, r := range resps {
		var i int
		if json.Unmarshal(r.ID, &i) != nil || i < 0 || i >= len(calls) {
			continue
		}
		call := calls[i]
		switch {
		case r.Error != nil:
			call.err = r.Error.err(call.method)
		default:
			call.err = nil
			if err := json.Unmarshal(r.Result, call.out); err != nil {
				call.err = fmt.Errorf("%s: decode result: %w", call.method, err)
			}
		}
	}
	return nil
}
