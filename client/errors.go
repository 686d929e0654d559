package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/taskwire/taskwire"
)

// Error is a JSON-RPC error answered by the server. Message is for people;
// Code and Data are for programs (SPEC section 2 lists them).
type Error struct {
	// Method is the method whose call failed ("" for a whole batch, an
	// HTTP endpoint, or an answer with an HTTP status other than 200, such
	// as a 413 for a body over the server's limit; the error's text still
	// names the method).
	Method  string
	Code    taskwire.Code
	Message string
	// Data is the error's data member as sent, or nil.
	Data json.RawMessage
}

// Error returns the method, message and code.
func (e *Error) Error() string {
	if e.Method == "" {
		return fmt.Sprintf("%s (%d)", e.Message, e.Code)
	}
	return fmt.Sprintf("%s: %s (%d)", e.Method, e.Message, e.Code)
}

// ErrorCode returns the JSON-RPC code of the error.
func (e *Error) ErrorCode() taskwire.Code { return e.Code }

// DecodeData decodes the error's data member into v.
func (e *Error) DecodeData(v any) error {
	if len(e.Data) == 0 {
		return errors.New("error has no data")
	}
	return json.Unmarshal(e.Data, v)
}

// HTTPError is an answer that is not a JSON-RPC response: an HTTP status
// other than 200 or 204 with a body that carries no JSON-RPC error (a
// proxy's error page, ...), and every 401, whatever its body (taskwire's
// carries a -32002): IsUnauthorized reads it.
type HTTPError struct {
	StatusCode int
	// Body is the start of the response body.
	Body string
}

// Error returns the status and the start of the body.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, strings.TrimSpace(e.Body))
}

// CodeOf returns the JSON-RPC code of err, or 0 when err is not (or does
// not wrap) an *Error.
func CodeOf(err error) taskwire.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsNotFound reports whether err says the task does not exist (-32602
// "Task not found: ID").
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == taskwire.CodeInvalidParams &&
		strings.HasPrefix(e.Message, "Task not found")
}

// IsNotRegistered reports whether err says the worker is not registered
// or has gone offline (-32602 "Worker not registered: ID"); the worker
// must register again.
func IsNotRegistered(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == taskwire.CodeInvalidParams &&
		strings.HasPrefix(e.Message, "Worker not registered")
}

// IsRateLimited reports whether err is a rate limit (-32000).
func IsRateLimited(err error) bool { return CodeOf(err) == taskwire.CodeRateLimited }

// IsUnavailable reports whether err says a backend is unavailable
// (-32001); the call changed nothing and may be retried.
func IsUnavailable(err error) bool { return CodeOf(err) == taskwire.CodeUnavailable }

// IsConflict reports whether err says the task's state does not allow the
// call (-32003): already final, not assigned, assigned elsewhere, or a
// stale attempt.
func IsConflict(err error) bool { return CodeOf(err) == taskwire.CodeConflict }

// IsNotAllowed reports whether err is a refusal for lack of a role, or a
// worker acting on a task that is not its own (-32002).
func IsNotAllowed(err error) bool { return CodeOf(err) == taskwire.CodeNotAllowed }

// IsUnauthorized reports whether the server refused the token (HTTP 401).
func IsUnauthorized(err error) bool {
	var h *HTTPError
	return errors.As(err, &h) && h.StatusCode == 401
}

// RetryAfter returns how long the server asked the caller to wait before
// trying again (data.retryAfterMs of -32000 and -32001), and whether it
// said so.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) || len(e.Data) == 0 {
		return 0, false
	}
	var d struct {
		RetryAfterMs *int64 `json:"retryAfterMs"`
	}
	if json.Unmarshal(e.Data, &d) != nil || d.RetryAfterMs == nil || *d.RetryAfterMs < 0 {
		return 0, false
	}
	return time.Duration(*d.RetryAfterMs) * time.Millisecond, true
}
