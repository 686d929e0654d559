package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// unavailableLogInterval is the least time between two warnings of a
// backend that cannot serve.
const unavailableLogInterval = 10 * time.Second

// defaultRetryAfter is the retryAfterMs of a -32001 whose backend did not
// say when to retry.
const defaultRetryAfter = time.Second

// errorFor maps an error returned by a method to the JSON-RPC error its
// caller receives (SPEC section 2). An error it does not know becomes
// -32603 "Internal error" with no details; it is logged with the method
// (as an error unless the caller left: its context canceled). A backend
// that cannot serve is -32001 and logged as a warning with its cause,
// which the client's error leaves out, at most once every
// unavailableLogInterval: an outage fails every call.
func (s *Server) errorFor(method string, err error) *taskwire.Error {
	log := s.log
	var (
		rpcErr      *taskwire.Error
		taskErr     *store.TaskNotFoundError
		workerErr   *store.WorkerNotFoundError
		conflictErr *store.ConflictError
	)
	switch {
	case errors.As(err, &rpcErr):
		return rpcErr
	case errors.As(err, &taskErr):
		return &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Task not found: " + taskErr.ID,
			Data:    map[string]any{"taskId": taskErr.ID}}
	case errors.As(err, &workerErr):
		return &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Worker not registered: " + workerErr.ID,
			Data:    map[string]any{"workerId": workerErr.ID}}
	case errors.As(err, &conflictErr):
		var assignedTo *string
		if conflictErr.AssignedTo != "" {
			assignedTo = &conflictErr.AssignedTo
		}
		return &taskwire.Error{Code: taskwire.CodeConflict,
			Message: "Conflict: " + conflictErr.Reason,
			Data: map[string]any{"taskId": conflictErr.TaskID,
				"status": conflictErr.Status, "assignedTo": assignedTo}}
	case errors.Is(err, store.ErrUnavailable):
		if !errors.Is(err, context.Canceled) {
			s.unavailableLog.Do(func() { log.Warn("rpc: backend unavailable", "method", method, "error", err) })
		}
		return Unavailable(err)
	case errors.Is(err, store.ErrTooLarge):
		// The store's only size limit is that of metadata merged by
		// task.update.
		return taskwire.TooLarge("updates.metadata", taskwire.MaxMetadataBytes)
	}
	if errors.Is(err, context.Canceled) {
		// The caller left (a stopped worker's long poll): nobody reads
		// the answer, and nothing went wrong here.
		log.Debug("rpc: caller left before the answer", "method", method, "error", err)
		return internalError()
	}
	log.Error("rpc: method failed", "method", method, "error", err)
	return internalError()
}

// Unavailable returns the -32001 of err when err says a backend cannot
// serve now (store.ErrUnavailable), else nil; HTTP endpoints other than
// /rpc answer it with 503.
func Unavailable(err error) *taskwire.Error {
	var unavailErr *store.UnavailableError
	switch {
	case errors.As(err, &unavailErr):
		return unavailable(unavailErr.Backend, unavailErr.RetryAfter)
	case errors.Is(err, store.ErrUnavailable):
		return unavailable("", 0)
	}
	return nil
}

// unavailable is the -32001 of a backend that cannot be reached.
func unavailable(backend string, retryAfter time.Duration) *taskwire.Error {
	if retryAfter <= 0 {
		retryAfter = defaultRetryAfter
	}
	msg := "Backend unavailable"
	if backend != "" {
		msg += ": " + backend
	}
	return &taskwire.Error{Code: taskwire.CodeUnavailable, Message: msg,
		Data: map[string]any{"backend": backend, "retryAfterMs": retryAfter.Milliseconds()}}
}

func internalError() *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeInternalError, Message: "Internal error"}
}

func parseError() *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeParseError, Message: "Parse error"}
}

// bodyUnreadable is the parse error of a body that could not be read whole.
func bodyUnreadable() *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeParseError, Message: "Parse error: the request body could not be read whole"}
}

func invalidRequest(format string, args ...any) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeInvalidRequest,
		Message: "Invalid Request: " + fmt.Sprintf(format, args...)}
}

func methodNotFound(method string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeMethodNotFound,
		Message: "Method not found: " + method,
		Data:    map[string]any{"method": method}}
}
