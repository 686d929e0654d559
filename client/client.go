package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/taskwire/taskwire"
)

// Options configure a Client. The zero value is a client without a token
// that retries safe calls up to 5 attempts.
type Options struct {
	// Token is sent as "Authorization: Bearer TOKEN" on every request.
	Token string
	// HTTPClient carries the requests. The default keeps connections
	// alive (up to 64 idle per host) and sets no overall timeout: long
	// polls and event streams are bounded by their context.
	HTTPClient *http.Client
	// MaxAttempts bounds how many times a call that is safe to retry is
	// sent (default 5; 1 turns retries off). The context bounds it too.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts when the
	// server names none (defaults 100ms and 5s); each wait doubles, with
	// jitter.
	MinBackoff, MaxBackoff time.Duration
}

// Client calls one taskwire server. It is safe for concurrent use; one
// Client per server is enough for a whole program.
type Client struct {
	base string
	opts Options
	http *http.Client
	seq  atomic.Int64
}

// New returns a client of the server at baseURL (e.g.
// http://127.0.0.1:7700).
func New(baseURL string, opts Options) *Client {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), opts: opts, http: hc}
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base }

// Call calls any method with params and decodes its result into result
// (when not nil). It retries only the read-only methods (task.get,
// task.list, system.workers, system.health, system.metrics,
// rpc.discover); the typed methods know which other calls are safe.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.call(ctx, method, params, result, resendIf(readOnly[method]))
}

// readOnly are the methods that change nothing.
var readOnly = map[string]bool{
	taskwire.MethodTaskGet: true, taskwire.MethodTaskList: true,
	taskwire.MethodSystemWorkers: true, taskwire.MethodSystemHealth: true,
	taskwire.MethodSystemMetrics: true, taskwire.MethodDiscover: true,
}

// call sends one request, and again on the failures r allows.
func (c *Client) call(ctx context.Context, method string, params, result any, r resend) error {
	body, err := taskwire.MarshalJSON(request{JSONRPC: "2.0", ID: c.seq.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", method, err)
	}
	return c.retry(ctx, r, func() error {
		raw, err := c.post(ctx, body)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		var resp response
		if err := json.Unmarshal(raw, &resp); err != nil {
			return fmt.Errorf("%s: undecodable response %.200q: %w", method, raw, err)
		}
		if resp.Error != nil {
			return resp.Error.err(method)
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
		return nil
	})
}

// request is a JSON-RPC 2.0 request object.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int64  `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

// response is a JSON-RPC 2.0 response object.
type response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *wireError      `json:"error"`
}

// wireError is the error member of a response.
type wireError struct {
	Code    taskwire.Code   `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func (w *wireError) err(method string) *Error {
	e := &Error{Method: method, Code: w.Code, Message: w.Message}
	if len(w.Data) > 0 && string(w.Data) != "null" {
		e.Data = w.Data
	}
	return e
}

// post sends body to /rpc and returns the response body of a 200 answer.
// Any other status is an *Error when the body carries a JSON-RPC error,
// else an *HTTPError.
func (c *Client) post(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/rpc", bytes.NewReader(body))
	if err != nil {
		return nil, &unsendableError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return io.ReadAll(resp.Body)
}

// do sends req with the token.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.opts.Token != "" {
		if strings.IndexFunc(c.opts.Token, headerControl) >= 0 {
			return nil, &unsendableError{errors.New("the token holds a control character, which an HTTP header cannot carry")}
		}
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	return c.http.Do(req)
}

// headerControl reports whether r is a control character an HTTP header
// value cannot hold (horizontal tab aside).
func headerControl(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }

// unsendableError is a request that cannot be sent as it is (a base URL
// or a token HTTP cannot carry): no attempt reaches the server, and
// retrying cannot help.
type unsendableError struct{ err error }

func (e *unsendableError) Error() string {
	return "taskwire client: cannot send the request: " + e.err.Error()
}

func (e *unsendableError) Unwrap() error { return e.err }

// statusError reads the error of a response whose status is not 200. A
// 401 is always an *HTTPError, whatever its body, so that IsUnauthorized
// holds.
func statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r response
	if resp.StatusCode != http.StatusUnauthorized && json.Unmarshal(raw, &r) == nil && r.Error != nil {
		return r.Error.err("")
	}
	return &HTTPError{StatusCode: resp.StatusCode, Body: string(raw[:min(len(raw), 512)])}
}

// errNoResponse is a batch answer that lacks one of its calls.
var errNoResponse = errors.New("the server sent no response for this call")
