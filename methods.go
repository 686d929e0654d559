package taskwire

import "encoding/json"

// Method names of the contract (SPEC section 4).
const (
	MethodTaskCreate       = "task.create"
	MethodTaskClaim        = "task.claim"
	MethodTaskUpdate       = "task.update"
	MethodTaskComplete     = "task.complete"
	MethodTaskList         = "task.list"
	MethodTaskGet          = "task.get"
	MethodTaskAssign       = "task.assign"
	MethodTaskUnassign     = "task.unassign"
	MethodTaskDelete       = "task.delete"
	MethodSystemRegister   = "system.register"
	MethodSystemHeartbeat  = "system.heartbeat"
	MethodSystemUnregister = "system.unregister"
	MethodSystemWorkers    = "system.workers"
	MethodSystemHealth     = "system.health"
	MethodSystemMetrics    = "system.metrics"
	MethodDiscover         = "rpc.discover"
)

// Bounds of the params that are not task fields.
const (
	MaxClaimTasks   = 10
	MaxWaitMs       = 30_000
	MaxListLimit    = 1000
	DefaultListSize = 100
)

// CreateParams are the params of task.create. Nil pointers take the
// documented default. RunAt and DelayMs are mutually exclusive.
type CreateParams struct {
	Text           string          `json:"text" jsonschema:"minLength=1,maxLength=500"`
	Priority       *int            `json:"priority,omitempty" jsonschema:"minimum=0,maximum=100,default=50"`
	Metadata       json.RawMessage `json:"metadata,omitempty" jsonschema:"oneof_type=object;null"`
	Queue          string          `json:"queue,omitempty" jsonschema:"minLength=1,maxLength=64,pattern=^[a-z0-9_.-]+$,default=default"`
	RunAt          *Time           `json:"runAt,omitempty"`
	DelayMs        *int64          `json:"delayMs,omitempty" jsonschema:"minimum=0,maximum=31536000000"`
	MaxAttempts    *int            `json:"maxAttempts,omitempty" jsonschema:"minimum=1,maximum=100,default=3"`
	LeaseMs        *int64          `json:"leaseMs,omitempty" jsonschema:"minimum=1000,maximum=86400000,default=300000"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty" jsonschema:"minLength=1,maxLength=255"`
}

// ClaimParams are the params of task.claim.
type ClaimParams struct {
	WorkerID string   `json:"workerId" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	MaxTasks *int     `json:"maxTasks,omitempty" jsonschema:"minimum=1,maximum=10,default=1"`
	Queues   []string `json:"queues,omitempty" jsonschema:"maxItems=64,uniqueItems=true,minLength=1,maxLength=64,pattern=^[a-z0-9_.-]+$"`
	WaitMs   *int64   `json:"waitMs,omitempty" jsonschema:"minimum=0,maximum=30000,default=0"`
}

// ClaimResult is the result of task.claim. When Claimed is false the other
// fields are absent; otherwise TaskID and Task are the first claimed task
// and Tasks all of them.
type ClaimResult struct {
	Claimed bool    `json:"claimed"`
	TaskID  string  `json:"taskId,omitempty"`
	Task    *Task   `json:"task,omitempty"`
	Tasks   []*Task `json:"tasks,omitempty"`
}

// TaskUpdates are the fields task.update may change; nil means unchanged.
// Metadata is merged key by key; a key set to null is removed.
type TaskUpdates struct {
	Text     *string         `json:"text,omitempty" jsonschema:"minLength=1,maxLength=500"`
	Status   *Status         `json:"status,omitempty" jsonschema:"enum=pending,enum=in_progress,enum=completed,enum=failed"`
	Priority *int            `json:"priority,omitempty" jsonschema:"minimum=0,maximum=100"`
	Metadata json.RawMessage `json:"metadata,omitempty" jsonschema:"oneof_type=object;null"`
}

// UpdateParams are the params of task.update.
type UpdateParams struct {
	ID       string      `json:"id" jsonschema:"minLength=1,maxLength=128"`
	Updates  TaskUpdates `json:"updates"`
	WorkerID string      `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	Attempt  *int        `json:"attempt,omitempty" jsonschema:"minimum=0"`
}

// CompleteParams are the params of task.complete. ID or TaskID names the
// task (both only when equal). With Error set the task fails, otherwise it
// completes with Result (any JSON value, at most MaxResultBytes).
type CompleteParams struct {
	ID       string          `json:"id,omitempty" jsonschema:"minLength=1,maxLength=128"`
	TaskID   string          `json:"taskId,omitempty" jsonschema:"minLength=1,maxLength=128"`
	WorkerID string          `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *string         `json:"error,omitempty" jsonschema:"minLength=1,maxLength=65536"`
	Attempt  *int            `json:"attempt,omitempty" jsonschema:"minimum=0"`
}

// CompleteResult is the result of task.complete.
type CompleteResult struct {
	ID          string `json:"id"`
	Status      Status `json:"status"`
	CompletedAt Time   `json:"completedAt"`
}

// ListParams are the params of task.list.
type ListParams struct {
	Status     Status `json:"status,omitempty" jsonschema:"enum=pending,enum=in_progress,enum=completed,enum=failed"`
	AssignedTo string `json:"assignedTo,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	Priority   *int   `json:"priority,omitempty" jsonschema:"minimum=0,maximum=100"`
	Queue      string `json:"queue,omitempty" jsonschema:"minLength=1,maxLength=64,pattern=^[a-z0-9_.-]+$"`
	Limit      *int   `json:"limit,omitempty" jsonschema:"minimum=1,maximum=1000,default=100"`
	Offset     *int   `json:"offset,omitempty" jsonschema:"minimum=0,maximum=1000000000,default=0"`
	OrderBy    string `json:"orderBy,omitempty" jsonschema:"enum=createdAt,enum=updatedAt,enum=priority,enum=status,enum=assignedTo,enum=completedAt,default=createdAt"`
	Order      string `json:"order,omitempty" jsonschema:"enum=asc,enum=desc,default=desc"`
}

// ListResult is the result of task.list.
type ListResult struct {
	Tasks      []*Task `json:"tasks"`
	TotalCount int     `json:"totalCount"`
	HasMore    bool    `json:"hasMore"`
}

// GetParams are the params of task.get.
type GetParams struct {
	ID string `json:"id" jsonschema:"minLength=1,maxLength=128"`
}

// AssignParams are the params of task.assign; WorkerID or InstanceID
// names the worker (both only when equal).
type AssignParams struct {
	TaskID     string `json:"taskId" jsonschema:"minLength=1,maxLength=128"`
	WorkerID   string `json:"workerId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
	InstanceID string `json:"instanceId,omitempty" jsonschema:"minLength=1,maxLength=128,pattern=^[A-Za-z0-9_.:@-]+$"`
}

// AssignResult is the result of task.assign.
type AssignResult struct {
	TaskID     string `json:"taskId"`
	WorkerID   string `json:"workerId"`
	AssignedAt Time   `json:"assignedAt"`
}

// UnassignParams are the params of task.unassign.
type UnassignParams struct {
	TaskID string `json:"taskId" jsonschema:"minLength=1,maxLength=128"`
}

// UnassignResult is the result of task.unassign. PreviousAssignment is
// null when the task was not assigned.
type UnassignResult struct {
	TaskID             string  `json:"taskId"`
	PreviousAssignment *string `json:"previousAssignment" jsonschema:"oneof_type=string;null"`
	UnassignedAt       Time    `json:"unassignedAt"`
}

// DeleteParams are the params of task.delete.
type DeleteParams struct {
	ID string `json:"id" jsonschema:"minLength=1,maxLength=128"`
}

// DeleteResult is the result of task.delete.
type DeleteResult struct {
	ID        string `json:"id"`
	Deleted   bool   `json:"deleted"`
	DeletedAt Time   `json:"deletedAt"`
}
