package taskwire

import (
	"encoding/json"
	"time"
)

// WorkerStatus is the state of a registered worker.
type WorkerStatus string

// Worker states: online while it heartbeats, offline once silent for the
// worker timeout (it must register again to claim).
const (
	WorkerOnline  WorkerStatus = "online"
	WorkerOffline WorkerStatus = "offline"
)

// Worker is a registered worker as system.workers reports it.
type Worker struct {
	ID           string          `json:"id"`
	Status       WorkerStatus    `json:"status" jsonschema:"enum=online,enum=offline"`
	Roles        []string        `json:"roles"`
	Queues       []string        `json:"queues"`
	Metadata     json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	RegisteredAt time.Time       `json:"registeredAt"`
	LastSeen     time.Time       `json:"lastSeen"`
	// Tasks are the ids of the worker's in_progress tasks.
	Tasks []string `json:"tasks"`
}

// MarshalJSON writes the wire form of the worker, with millisecond
// timestamps, empty lists as [] and <, > and & unescaped, as the server
// writes the rest of its answers.
func (w Worker) MarshalJSON() ([]byte, error) {
	type plain Worker
	v := struct {
		plain
		Metadata     json.RawMessage `json:"metadata"`
		RegisteredAt Time            `json:"registeredAt"`
		LastSeen     Time            `json:"lastSeen"`
	}{plain(w), nullIfEmpty(w.Metadata), NewTime(w.RegisteredAt), NewTime(w.LastSeen)}
	for _, l := range []*[]string{&v.Roles, &v.Queues, &v.Tasks} {
		if *l == nil {
			*l = []string{}
		}
	}
	return MarshalJSON(v)
}

// RegisterParams are the params of system.register; ID or WorkerID names
// the worker (both only when equal). Queues are those it claims from by default.
type RegisterParams struct {
	ID       string          `json:"id,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	WorkerID string          `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	Roles    []string        `json:"roles,omitempty" jsonschema:"maxItems=32,minLength=1,maxLength=64"`
	Queues   []string        `json:"queues,omitempty" jsonschema:"maxItems=64,uniqueItems=true,minLength=1,maxLength=64,pattern=^[a-z0-9_.-]+$"`
	Metadata json.RawMessage `json:"metadata,omitempty" jsonschema:"oneof_type=object;null"`
}

// RegisterResult is the result of system.register.
type RegisterResult struct {
	Registered          bool  `json:"registered"`
	HeartbeatIntervalMs int64 `json:"heartbeatIntervalMs"`
	TimeoutMs           int64 `json:"timeoutMs"`
}

// HeartbeatParams are the params of system.heartbeat; InstanceID or
// WorkerID names the worker (both only when equal).
type HeartbeatParams struct {
	InstanceID string `json:"instanceId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	WorkerID   string `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
}

// HeartbeatResult is the result of system.heartbeat.
type HeartbeatResult struct {
	Alive bool `json:"alive"`
}

// UnregisterParams are the params of system.unregister; ID or WorkerID
// names the worker (both only when equal).
type UnregisterParams struct {
	ID       string `json:"id,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	WorkerID string `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
}

// UnregisterResult is the result of system.unregister: how many of the
// worker's tasks went back to the queue (those on their last attempt fail
// instead and are not counted).
type UnregisterResult struct {
	Unregistered bool `json:"unregistered"`
	Requeued     int  `json:"requeued"`
}

// NoParams are the params of methods that take none (an empty object or
// no params member at all).
type NoParams struct{}

// WorkersResult is the result of system.workers.
type WorkersResult struct {
	Workers []Worker `json:"workers"`
}

// HealthResult is the result of system.health. Status is "ok" when every
// backend answers, else "degraded"; Backends maps each backend to its state.
type HealthResult struct {
	Status   string            `json:"status" jsonschema:"enum=ok,enum=degraded"`
	Backends map[string]string `json:"backends"`
	Version  string            `json:"version"`
	UptimeMs int64             `json:"uptimeMs"`
}

// QueueCounts counts the tasks of one queue by status.
type QueueCounts struct {
	Queue       string         `json:"queue"`
	ByStatus    map[Status]int `json:"byStatus"`
	OldestAgeMs int64          `json:"oldestPendingAgeMs"`
}

// MetricsResult is the result of system.metrics. Rates are per second over
// the last minute of this server process.
type MetricsResult struct {
	ByStatus             map[Status]int       `json:"byStatus"`
	Queues               []QueueCounts        `json:"queues"`
	ClaimRatePerSec      float64              `json:"claimRatePerSec"`
	CompletionRatePerSec float64              `json:"completionRatePerSec"`
	OldestPendingAgeMs   int64                `json:"oldestPendingAgeMs"`
	Workers              map[WorkerStatus]int `json:"workers"`
}
