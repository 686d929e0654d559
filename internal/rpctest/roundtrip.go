package rpctest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/taskwire/taskwire"
)

// Send sends calls as one batch, or as a single request object when there
// is one call, and returns the responses in the order of calls. The error
// of any call is returned as an error.
func (c *Client) Send(ctx context.Context, calls []Call) ([]Response, error) {
	if len(calls) == 1 {
		var r Response
		if err := c.Call(ctx, calls[0].Method, calls[0].Params, &r.Result); err != nil {
			return nil, fmt.Errorf("%s: %w", calls[0].Method, err)
		}
		return []Response{r}, nil
	}
	resps, err := c.Batch(ctx, calls)
	if err != nil {
		return nil, err
	}
	for i, r := range resps {
		if r.Error != nil {
			return nil, fmt.Errorf("batch call %d, %s: %w", i, calls[i].Method, r.Error)
		}
	}
	return resps, nil
}

// RoundTrip is the load of the end-to-end benchmarks: as worker, it
// creates n tasks, claims n tasks (10 per claim) and completes them, each
// phase in one batch (a single request when it has one call). Params are
// structs and only the claimed ids are decoded, to keep the load
// generator's share of the CPU small.
func (c *Client) RoundTrip(ctx context.Context, worker string, n int) error {
	type (
		createParams struct {
			Text string `json:"text"`
		}
		claimParams struct {
			WorkerID string `json:"workerId"`
			MaxTasks int    `json:"maxTasks"`
		}
		completeParams struct {
			ID       string         `json:"id"`
			WorkerID string         `json:"workerId"`
			Result   map[string]int `json:"result"`
		}
		claimed struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		}
	)
	calls := make([]Call, n)
	for i := range calls {
		calls[i] = Call{Method: taskwire.MethodTaskCreate, Params: createParams{Text: "bench"}}
	}
	if _, err := c.Send(ctx, calls); err != nil {
		return err
	}
	claims := make([]Call, (n+9)/10)
	for i := range claims {
		claims[i] = Call{Method: taskwire.MethodTaskClaim, Params: claimParams{WorkerID: worker, MaxTasks: min(10, n-10*i)}}
	}
	resps, err := c.Send(ctx, claims)
	if err != nil {
		return err
	}
	var completes []Call
	for _, r := range resps {
		var res claimed
		if err := json.Unmarshal(r.Result, &res); err != nil {
			return err
		}
		for _, t := range res.Tasks {
			completes = append(completes, Call{Method: taskwire.MethodTaskComplete,
				Params: completeParams{ID: t.ID, WorkerID: worker, Result: map[string]int{"n": len(completes)}}})
		}
	}
	if len(completes) == 0 {
		return nil
	}
	_, err = c.Send(ctx, completes)
	return err
}
