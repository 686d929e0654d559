package store

import (
	"time"

	"github.com/taskwire/taskwire"
)

// The event builders below give each event type its payload and metadata
// (SPEC section 5), so that every backend writes the same events. A backend
// calls them inside the transaction of the change and stores the result in
// its event log, which assigns the ID.

// SystemActor is the By of changes the server makes on its own: lease
// expiry, offline workers.
const SystemActor = "system"

func event(typ taskwire.EventType, taskID string, now time.Time, payload, metadata any) taskwire.Event {
	p, _ := taskwire.MarshalJSON(payload)  // maps or structs of plain values: cannot fail
	m, _ := taskwire.MarshalJSON(metadata) // likewise
	return taskwire.Event{Type: typ, TaskID: taskID, Payload: p, Metadata: m, Timestamp: now.UnixMilli()}
}

// TaskCreatedEvent: payload {id, text, status, priority, createdAt},
// metadata {createdBy}.
func TaskCreatedEvent(t *taskwire.Task, by string) taskwire.Event {
	// Structs rather than maps for the events of every task's life: their
	// fields are in the sorted order of a map's keys, so the bytes are the
	// same, and they encode several times faster.
	return event(taskwire.EventTaskCreated, t.ID, t.CreatedAt, struct {
		CreatedAt taskwire.Time   `json:"createdAt"`
		ID        string          `json:"id"`
		Priority  int             `json:"priority"`
		Status    taskwire.Status `json:"status"`
		Text      string          `json:"text"`
	}{taskwire.NewTime(t.CreatedAt), t.ID, t.Priority, t.Status, t.Text}, struct {
		CreatedBy string `json:"createdBy"`
	}{by})
}

// TaskClaimedEvent: payload {taskId, workerId}, metadata {claimedAt}.
func TaskClaimedEvent(taskID, workerID string, now time.Time) taskwire.Event {
	return event(taskwire.EventTaskClaimed, taskID, now, struct {
		TaskID   string `json:"taskId"`
		WorkerID string `json:"workerId"`
	}{taskID, workerID}, struct {
		ClaimedAt taskwire.Time `json:"claimedAt"`
	}{taskwire.NewTime(now)})
}

// TaskUpdatedEvent: payload the task with its result left out (up to
// 1 GiB): resultSize says how large it is and resultTruncated that it is
// not there, as in a task.list row; metadata {updatedBy, changes: [field
// names]}.
func TaskUpdatedEvent(t *taskwire.Task, by string, changes []string, now time.Time) taskwire.Event {
	view := *t
	view.Result, view.ResultTruncated = nil, t.ResultSize > 0
	if changes == nil {
		changes = []string{}
	}
	return event(taskwire.EventTaskUpdated, t.ID, now, view,
		map[string]any{"updatedBy": by, "changes": changes})
}

// TaskCompletedEvent: payload {id, status, duration} (duration in ms),
// metadata {completedBy}. A lease that expires on the last attempt fails
// the task with this event too, completedBy SystemActor.
func TaskCompletedEvent(t *taskwire.Task, by string) taskwire.Event {
	return event(taskwire.EventTaskCompleted, t.ID, t.CompletedAt, struct {
		Duration int64           `json:"duration"`
		ID       string          `json:"id"`
		Status   taskwire.Status `json:"status"`
	}{t.DurationMs, t.ID, t.Status}, struct {
		CompletedBy string `json:"completedBy"`
	}{by})
}

// TaskAssignedEvent: payload {taskId, workerId, assignedAt}, metadata
// {assignedBy}.
func TaskAssignedEvent(taskID, workerID, by string, now time.Time) taskwire.Event {
	return event(taskwire.EventTaskAssigned, taskID, now,
		map[string]any{"taskId": taskID, "workerId": workerID, "assignedAt": taskwire.NewTime(now)},
		map[string]any{"assignedBy": by})
}

// TaskUnassignedEvent: payload {taskId, previousAssignment, unassignedAt},
// metadata {unassignedBy}.
func TaskUnassignedEvent(taskID, previous, by string, now time.Time) taskwire.Event {
	var prev any
	if previous != "" {
		prev = previous
	}
	return event(taskwire.EventTaskUnassigned, taskID, now,
		map[string]any{"taskId": taskID, "previousAssignment": prev, "unassignedAt": taskwire.NewTime(now)},
		map[string]any{"unassignedBy": by})
}

// TaskDeletedEvent: payload {id, deletedAt}, metadata {deletedBy}.
func TaskDeletedEvent(taskID, by string, now time.Time) taskwire.Event {
	return event(taskwire.EventTaskDeleted, taskID, now,
		map[string]any{"id": taskID, "deletedAt": taskwire.NewTime(now)},
		map[string]any{"deletedBy": by})
}

// Reasons a task goes back to pending, in task.requeued payloads.
const (
	RequeueLeaseExpired  = "lease expired"
	RequeueWorkerOffline = "worker offline"
	RequeueUnregistered  = "worker unregistered"
	RequeueUpdate        = "status set to pending"
)

// TaskRequeuedEvent: payload {taskId, previousWorker (null when none),
// attempt, reason}, metadata {requeuedBy}.
func TaskRequeuedEvent(taskID, previousWorker string, attempt int, reason, by string, now time.Time) taskwire.Event {
	var prev any
	if previousWorker != "" {
		prev = previousWorker
	}
	return event(taskwire.EventTaskRequeued, taskID, now,
		map[string]any{"taskId": taskID, "previousWorker": prev, "attempt": attempt, "reason": reason},
		map[string]any{"requeuedBy": by})
}

// WorkerRegisteredEvent: payload {workerId, queues, roles}, metadata
// {registeredBy}.
func WorkerRegisteredEvent(workerID string, queues, roles []string, by string, now time.Time) taskwire.Event {
	return event(taskwire.EventWorkerRegistered, "", now,
		map[string]any{"workerId": workerID, "queues": nonNil(queues), "roles": nonNil(roles)},
		map[string]any{"registeredBy": by})
}

// WorkerOfflineEvent: payload {workerId, lastSeen}, metadata {detectedBy}.
func WorkerOfflineEvent(workerID string, lastSeen, now time.Time) taskwire.Event {
	return event(taskwire.EventWorkerOffline, "", now,
		map[string]any{"workerId": workerID, "lastSeen": taskwire.NewTime(lastSeen)},
		map[string]any{"detectedBy": SystemActor})
}

// WorkerUnregisteredEvent: payload {workerId, requeued}, metadata
// {unregisteredBy}.
func WorkerUnregisteredEvent(workerID string, requeued int, by string, now time.Time) taskwire.Event {
	return event(taskwire.EventWorkerUnregistered, "", now,
		map[string]any{"workerId": workerID, "requeued": requeued},
		map[string]any{"unregisteredBy": by})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
