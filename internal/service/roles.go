package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/store"
)

// access says which roles may call a method.
type access int

const (
	// adminOnly: the admin alone (the zero value, so that a method missing
	// from the table is refused to the other roles).
	adminOnly access = iota
	// everyRole: any authenticated caller.
	everyRole
	// producers: admin and producer.
	producers
	// ownWorker: admin, and a worker naming its own worker id.
	ownWorker
)

// methodAccess is the table of method x role of SPEC section 4. A worker
// updates and completes only the tasks assigned to itself (checked against
// the task by the store, see UpdateTask and CompleteTask); a status change
// by task.update is the admin's alone.
var methodAccess = map[string]access{
	taskwire.MethodTaskCreate:       producers,
	taskwire.MethodTaskClaim:        ownWorker,
	taskwire.MethodTaskUpdate:       ownWorker,
	taskwire.MethodTaskComplete:     ownWorker,
	taskwire.MethodTaskList:         everyRole,
	taskwire.MethodTaskGet:          everyRole,
	taskwire.MethodTaskAssign:       adminOnly,
	taskwire.MethodTaskUnassign:     adminOnly,
	taskwire.MethodTaskDelete:       adminOnly,
	taskwire.MethodSystemRegister:   ownWorker,
	taskwire.MethodSystemHeartbeat:  ownWorker,
	taskwire.MethodSystemUnregister: ownWorker,
	taskwire.MethodSystemWorkers:    adminOnly,
	taskwire.MethodSystemHealth:     everyRole,
	taskwire.MethodSystemMetrics:    everyRole,
	// Following the events: GET /events, events.subscribe over WebSocket.
	taskwire.MethodEventsSubscribe: producers,
}

// authorize checks the caller's role against methodAccess; workerID is the
// worker the call acts as (for ownWorker methods).
func (s *Service) authorize(ctx context.Context, method, workerID string) error {
	if !s.cfg.AuthRequired {
		return nil
	}
	c := CallerFrom(ctx)
	switch {
	case c.Role == auth.RoleAdmin:
		return nil
	case c.Role == "":
		return notAllowed("a token is required")
	}
	switch methodAccess[method] {
	case everyRole:
		return nil
	case producers:
		if c.Role == auth.RoleProducer {
			return nil
		}
	case ownWorker:
		if c.Role != auth.RoleWorker {
			break
		}
		if workerID != c.WorkerID {
			return notAllowed(fmt.Sprintf("token %s acts as worker %s, not %s", c.Name, c.WorkerID, orNone(workerID)))
		}
		return nil
	}
	return notAllowed(fmt.Sprintf("role %s may not call %s", c.Role, method))
}

// actingWorker is the worker a task.update or task.complete acts as: the
// given one, or for a worker-role caller that names none, its own (so the
// store holds it to the tasks assigned to it).
func (s *Service) actingWorker(ctx context.Context, given string) string {
	if c := CallerFrom(ctx); s.cfg.AuthRequired && c.Role == auth.RoleWorker && given == "" {
		return c.WorkerID
	}
	return given
}

// checkStatusChange refuses a status change by task.update to every role
// but admin.
func (s *Service) checkStatusChange(ctx context.Context, u *taskwire.TaskUpdates) error {
	if c := CallerFrom(ctx); s.cfg.AuthRequired && c.Role != auth.RoleAdmin && u.Status != nil {
		return notAllowed("status changes are admin-only")
	}
	return nil
}

// otherWorkersTask turns the store's refusal of a worker-role caller
// acting on a task another worker holds or has reserved into -32002; other
// errors pass unchanged, conflicts among them (a final task, a stale
// attempt: -32003 whoever asks).
func (s *Service) otherWorkersTask(ctx context.Context, err error) error {
	var conflict *store.ConflictError
	c := CallerFrom(ctx)
	if s.cfg.AuthRequired && c.Role == auth.RoleWorker && errors.As(err, &conflict) && conflict.OtherWorker {
		return notAllowed(fmt.Sprintf("task %s is assigned to another worker, not %s", conflict.TaskID, c.WorkerID))
	}
	return err
}

// notAllowed is the -32002 error with its reason.
func notAllowed(reason string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Not allowed: " + reason,
		Data: map[string]any{"reason": reason}}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
