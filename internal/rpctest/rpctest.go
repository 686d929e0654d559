// Package rpctest is a minimal JSON-RPC 2.0 caller for taskwire's own tests
// and benchmarks: it posts to /rpc and decodes the answer, nothing more.
package rpctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/taskwire/taskwire"
)

// Client calls one server.
type Client struct {
	URL  string // base URL, e.g. http://127.0.0.1:7700
	HTTP *http.Client
	// Token, when set, is sent as `Authorization: Bearer Token`.
	Token string
	seq   atomic.Int64
}

// New returns a client of the server at baseURL.
func New(baseURL string) *Client {
	return &Client{URL: baseURL, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// Response is one JSON-RPC response object.
type Response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *taskwire.Error `json:"error"`
}

// Call calls method with params and decodes the result into out (when not
// nil). A JSON-RPC error is returned as *taskwire.Error.
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	req := map[string]any{"jsonrpc": "2.0", "id": c.seq.Add(1), "method": method, "params": params}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	raw, status, err := c.Post(ctx, body)
	if err != nil {
		return err
	}
	var resp Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("%s: HTTP %d, undecodable body %.200q: %w", method, status, raw, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out != nil {
		return json.Unmarshal(resp.Result, out)
	}
	return nil
}

// Call is one entry of a batch.
type Call struct {
	Method string
	Params any
}

// Batch sends calls as one JSON-RPC batch and returns the responses in the
// order of calls.
func (c *Client) Batch(ctx context.Context, calls []Call) ([]Response, error) {
	type request struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  any    `json:"params"`
	}
	reqs := make([]request, len(calls))
	for i, call := range calls {
		reqs[i] = request{JSONRPC: "2.0", ID: i, Method: call.Method, Params: call.Params}
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, err
	}
	raw, status, err := c.Post(ctx, body)
	if err != nil {
		return nil, err
	}
	var resps []Response
	if err := json.Unmarshal(raw, &resps); err != nil {
		return nil, fmt.Errorf("batch: HTTP %d, undecodable body %.200q: %w", status, raw, err)
	}
	out := make([]Response, len(calls))
	for _, r := range resps {
		var i int
		if err := json.Unmarshal(r.ID, &i); err != nil || i < 0 || i >= len(calls) {
			return nil, fmt.Errorf("batch: response with unknown id %s", r.ID)
		}
		out[i] = r
	}
	return out, nil
}

// Post sends body to /rpc and returns the raw answer and HTTP status.
func (c *Client) Post(ctx context.Context, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/rpc", bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return raw, resp.StatusCode, err
}
