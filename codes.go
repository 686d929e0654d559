package taskwire

import "fmt"

// Code is a JSON-RPC 2.0 error code (SPEC section 2).
type Code int

// The error codes of the contract.
const (
	CodeParseError     Code = -32700 // body is not JSON
	CodeInvalidRequest Code = -32600 // not a valid request object
	CodeMethodNotFound Code = -32601 // unknown method
	CodeInvalidParams  Code = -32602 // bad params, task not found, worker not registered
	CodeInternalError  Code = -32603 // internal error; never leaks details
	CodeRateLimited    Code = -32000 // rate limited; data has retryAfterMs
	CodeUnavailable    Code = -32001 // a backend is unavailable; safe to retry
	CodeNotAllowed     Code = -32002 // no or insufficient role, not the assigned worker
	CodeConflict       Code = -32003 // task state does not allow this
	CodeTooLarge       Code = -32004 // a field over its limit
)

// Error is a JSON-RPC error object. Message is for people; Code and Data
// are for programs.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// Error returns the message with its code.
func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Code) }

// ErrorCode returns the JSON-RPC code of the error.
func (e *Error) ErrorCode() Code { return e.Code }

// Errorf returns an Error with a formatted message and no data.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
