package taskwire

import "encoding/json"

// EventType names a kind of state change (SPEC section 5).
type EventType string

// The event types. Every state change of a task or worker writes exactly
// one of these into the event log, in the same transaction as the change.
const (
	EventTaskCreated        EventType = "task.created"
	EventTaskClaimed        EventType = "task.claimed"
	EventTaskUpdated        EventType = "task.updated"
	EventTaskCompleted      EventType = "task.completed"
	EventTaskAssigned       EventType = "task.assigned"
	EventTaskUnassigned     EventType = "task.unassigned"
	EventTaskDeleted        EventType = "task.deleted"
	EventTaskRequeued       EventType = "task.requeued"
	EventWorkerRegistered   EventType = "worker.registered"
	EventWorkerOffline      EventType = "worker.offline"
	EventWorkerUnregistered EventType = "worker.unregistered"
)

// EventTypes lists every event type.
var EventTypes = []EventType{
	EventTaskCreated, EventTaskClaimed, EventTaskUpdated, EventTaskCompleted,
	EventTaskAssigned, EventTaskUnassigned, EventTaskDeleted, EventTaskRequeued,
	EventWorkerRegistered, EventWorkerOffline, EventWorkerUnregistered,
}

// Event is one entry of the event log. ID orders events within a server's
// log and is the resume point of SSE (Last-Event-ID) and afterEventId;
// Timestamp is in ms since the epoch.
type Event struct {
	ID        string          `json:"id"`
	Type      EventType       `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Metadata  json.RawMessage `json:"metadata"`
	Timestamp int64           `json:"timestamp"`
	// TaskID is the task the event concerns ("" for worker events), kept
	// for the taskId filter; it is not written on the wire.
	TaskID string `json:"-"`
}
