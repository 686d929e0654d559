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

// EventGap is not a state change, and never in the log: a stream (GET
// /events, events.subscribe) sends it where events it would have sent are
// no longer in the log (trimmed by retention, or lost with Redis's data)
// before going on with the events after them. Its payload is a GapPayload;
// its ID is the last missing event's, so that a follower resuming after it
// goes on past the gap. Filters do not hold it back: the missing events
// may have been any. A follower that sees it should reread the state it
// keeps (task.list).
const EventGap EventType = "events.gap"

// GapPayload is the payload of an events.gap event: the events with an ID
// after After and before Next are missing.
type GapPayload struct {
	After string `json:"after"`
	Next  string `json:"next"`
}

// EventTypes lists every event type of the log.
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
