package taskwire

import (
	"encoding/json"
	"time"
)

// Status is the state of a task. A task moves pending -> in_progress ->
// completed | failed; completed and failed are final.
type Status string

// The four task states.
const (
	StatusPending    Status = "pending"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// Final reports whether s is a final state (completed or failed).
func (s Status) Final() bool { return s == StatusCompleted || s == StatusFailed }

// Valid reports whether s is one of the four task states.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusInProgress, StatusCompleted, StatusFailed:
		return true
	}
	return false
}

// Defaults and bounds of the task contract (SPEC section 3).
const (
	DefaultQueue       = "default"
	DefaultPriority    = 50
	DefaultMaxAttempts = 3
	DefaultLeaseMs     = 300_000
	// MaxResultBytes is the largest result a task may carry: 1 GiB.
	MaxResultBytes = 1 << 30
	// MaxMetadataBytes is the largest encoded metadata object: 64 KiB,
	// measured on its compact encoding (FitJSON).
	MaxMetadataBytes = 64 << 10
	// ListResultLimit is the result size above which task.list leaves a
	// result out of its rows (resultTruncated).
	ListResultLimit = 64 << 10
)

// Task is one unit of work. Empty optional fields (assignedTo, error,
// leaseExpiresAt, completedAt, durationMs, metadata, result) are written as
// JSON null; timestamps as ISO-8601 UTC with milliseconds.
type Task struct {
	ID          string          `json:"id"`
	Queue       string          `json:"queue"`
	Text        string          `json:"text"`
	Status      Status          `json:"status" jsonschema:"enum=pending,enum=in_progress,enum=completed,enum=failed"`
	Priority    int             `json:"priority"`
	Metadata    json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	AssignedTo  string          `json:"assignedTo" jsonschema:"oneof_type=string;null"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"maxAttempts"`
	LeaseMs     int64           `json:"leaseMs"`
	RunAt       time.Time       `json:"runAt"`
	// LeaseExpiresAt is set while the task is in_progress.
	LeaseExpiresAt time.Time `json:"leaseExpiresAt" jsonschema:"oneof_type=string;null"`
	// Result is the stored result. In task.list rows a result larger than
	// ListResultLimit is nil and ResultTruncated is true.
	Result json.RawMessage `json:"result"`
	// ResultSize is the size in bytes of the stored result (0 when none).
	ResultSize      int64     `json:"resultSize,omitempty"`
	ResultTruncated bool      `json:"resultTruncated,omitempty"`
	Error           string    `json:"error" jsonschema:"oneof_type=string;null"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
	CompletedAt     time.Time `json:"completedAt" jsonschema:"oneof_type=string;null"`
	// DurationMs is CompletedAt - CreatedAt, set at completion.
	DurationMs int64 `json:"durationMs" jsonschema:"oneof_type=integer;null"`
}

// taskPlain has Task's fields without its methods.
type taskPlain Task

// taskWire is the wire form of Task as UnmarshalJSON reads it: the fields
// that are null when empty, and the timestamps, shadow those of the
// embedded taskPlain.
type taskWire struct {
	taskPlain
	AssignedTo     *string `json:"assignedTo"`
	Error          *string `json:"error"`
	RunAt          *Time   `json:"runAt"`
	LeaseExpiresAt *Time   `json:"leaseExpiresAt"`
	CreatedAt      *Time   `json:"createdAt"`
	UpdatedAt      *Time   `json:"updatedAt"`
	CompletedAt    *Time   `json:"completedAt"`
	DurationMs     *int64  `json:"durationMs"`
}

// MarshalJSON writes the wire form of the task.
func (t Task) MarshalJSON() ([]byte, error) {
	return t.AppendJSON(make([]byte, 0, 512+len(t.Text)+len(t.Metadata)+len(t.Result)+6*len(t.Error)+tailRoom))
}

// UnmarshalJSON reads the wire form of a task.
func (t *Task) UnmarshalJSON(b []byte) error {
	var w taskWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = Task(w.taskPlain)
	t.AssignedTo, t.Error = deref(w.AssignedTo), deref(w.Error)
	t.RunAt, t.LeaseExpiresAt = w.RunAt.std(), w.LeaseExpiresAt.std()
	t.CreatedAt, t.UpdatedAt, t.CompletedAt = w.CreatedAt.std(), w.UpdatedAt.std(), w.CompletedAt.std()
	t.Metadata, t.Result = emptyIfNull(t.Metadata), emptyIfNull(t.Result)
	if w.DurationMs != nil {
		t.DurationMs = *w.DurationMs
	}
	return nil
}

func nullIfEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

func emptyIfNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
