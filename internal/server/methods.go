package server

import (
	"context"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/ws"
)

// methods is the JSON-RPC method table: every method of SPEC section 4,
// each bound to the service; events.* work over WebSocket only.
func methods(s *service.Service) []rpc.Method {
	return []rpc.Method{
		rpc.Register(taskwire.MethodTaskCreate, "Create a task (status pending).", bind(s.CreateTask)),
		rpc.Register(taskwire.MethodTaskClaim, "Claim the highest-priority oldest ready tasks for a worker; waitMs long-polls.", bind(s.ClaimTasks)),
		rpc.Register(taskwire.MethodTaskUpdate, "Change a task's text, status, priority or metadata.", bind(s.UpdateTask)),
		rpc.Register(taskwire.MethodTaskComplete, "Complete a task with a result, or fail it with an error.", bind(s.CompleteTask)),
		rpc.Register(taskwire.MethodTaskList, "List tasks with filters, sort and paging.", bind(s.ListTasks)),
		rpc.Register(taskwire.MethodTaskGet, "Get a task with its whole result.", bind(s.GetTask)),
		rpc.Register(taskwire.MethodTaskAssign, "Reserve a pending task for one worker.", bind(s.AssignTask)),
		rpc.Register(taskwire.MethodTaskUnassign, "Clear a task's assignment; an in-progress task goes back to pending.", bind(s.UnassignTask)),
		rpc.Register(taskwire.MethodTaskDelete, "Delete a task, its result and all traces.", bind(s.DeleteTask)),
		rpc.Register(taskwire.MethodSystemRegister, "Register or refresh a worker.", bind(s.RegisterWorker)),
		rpc.Register(taskwire.MethodSystemHeartbeat, "Renew a worker and the leases of its in-progress tasks.", bind(s.Heartbeat)),
		rpc.Register(taskwire.MethodSystemUnregister, "Remove a worker; its tasks go back to the queue at once.", bind(s.UnregisterWorker)),
		rpc.Register(taskwire.MethodSystemWorkers, "List the workers with status, queues, last heartbeat and tasks.", bind(s.Workers)),
		rpc.Register(taskwire.MethodSystemHealth, "Report the server's status, backends, version and uptime.", bind(s.Health)),
		rpc.Register(taskwire.MethodSystemMetrics, "Count tasks by status and queue; claim and completion rates.", bind(s.Metrics)),
		rpc.Register(taskwire.MethodEventsSubscribe, "WebSocket only: receive events as events.event notifications; afterEventId replays first.", bind(ws.Subscribe(s.AllowSubscribe))),
		rpc.Register(taskwire.MethodEventsUnsubscribe, "WebSocket only: end a subscription.", bind(ws.Unsubscribe)),
	}
}

// bind passes the caller to the service: the one ctx carries (set by
// guard, or by a transport with service.WithPrincipal), with the client's
// address when it has none.
func bind[P, R any](fn func(context.Context, *P) (R, error)) func(context.Context, *P) (R, error) {
	return func(ctx context.Context, p *P) (R, error) {
		c := service.CallerFrom(ctx)
		if c.Addr == "" {
			c.Addr = rpc.ClientAddr(ctx)
		}
		return fn(service.WithCaller(ctx, c), p)
	}
}
