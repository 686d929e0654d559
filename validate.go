package taskwire

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The Validate methods check the rules that span several fields; the bounds
// of single fields are in the jsonschema tags, which the server checks
// first. Each returns a *Error with the code the contract gives.

// InvalidParams returns a -32602 error whose data names what is wrong.
func InvalidParams(format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: CodeInvalidParams, Message: "Invalid params: " + msg,
		Data: map[string]any{"validation": msg}}
}

// TooLarge returns a -32004 error for a field over its limit in bytes.
func TooLarge(field string, limit int) *Error {
	return &Error{Code: CodeTooLarge,
		Message: fmt.Sprintf("Payload too large: %s is over %d bytes", field, limit),
		Data:    map[string]any{"field": field, "limit": limit}}
}

// oneOf returns whichever of a (named an) and b (named bn) is set; both set
// to different values, or neither, is an error.
func oneOf(an, a, bn, b string) (string, error) {
	switch {
	case a == "" && b == "":
		return "", InvalidParams("%s or %s is required", an, bn)
	case a != "" && b != "" && a != b:
		return "", InvalidParams("%s and %s name different values", an, bn)
	case a != "":
		return a, nil
	}
	return b, nil
}

// checkNoNUL refuses a string holding U+0000, which PostgreSQL text (the
// distributed store) cannot hold, in every mode alike: fields is a list
// of name, value pairs.
func checkNoNUL(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.ContainsRune(fields[i+1], 0) {
			return nulError(fields[i])
		}
	}
	return nil
}

// nulError is the -32602 of a field holding U+0000.
func nulError(field string) *Error {
	return InvalidParams("%s: must not contain the NUL character (U+0000)", field)
}

// checkMetadata checks that the metadata *m fits MaxMetadataBytes in its
// compact encoding (FitJSON), and replaces metadata over the limit only
// as sent with that encoding: what is stored is what was measured.
func checkMetadata(field string, m *json.RawMessage) error {
	fit, ok := FitJSON(*m, MaxMetadataBytes)
	if !ok {
		return TooLarge(field, MaxMetadataBytes)
	}
	*m = fit
	return nil
}

// Validate checks that runAt and delayMs are not both given, that no
// string holds U+0000 and that metadata fits its limit (compacting it when
// it fits only so).
func (p *CreateParams) Validate() error {
	if p.RunAt != nil && p.DelayMs != nil {
		return InvalidParams("runAt and delayMs are mutually exclusive")
	}
	if err := checkNoNUL("text", p.Text, "idempotencyKey", p.IdempotencyKey); err != nil {
		return err
	}
	return checkMetadata("metadata", &p.Metadata)
}

// Validate checks that no string holds U+0000 and that the metadata patch
// fits its limit (compacting it when it fits only so).
func (p *UpdateParams) Validate() error {
	if err := checkNoNUL("id", p.ID, "updates.text", deref(p.Updates.Text)); err != nil {
		return err
	}
	return checkMetadata("updates.metadata", &p.Updates.Metadata)
}

// Validate checks that the task id holds no U+0000.
func (p *GetParams) Validate() error { return checkNoNUL("id", p.ID) }

// Validate checks that the task id holds no U+0000.
func (p *DeleteParams) Validate() error { return checkNoNUL("id", p.ID) }

// Validate checks that the task id holds no U+0000.
func (p *UnassignParams) Validate() error { return checkNoNUL("taskId", p.TaskID) }

// Validate checks that the task id of the filter holds no U+0000.
func (p *SubscribeParams) Validate() error { return checkNoNUL("taskId", p.TaskID) }

// MaxTaskIDLength is the most characters of a task id that a call accepts.
const MaxTaskIDLength = 128

// CheckTaskID returns the -32602 error, naming field, that a call answers
// for a task id taken from a URL rather than from params (which the schema
// checks): not valid UTF-8, over MaxTaskIDLength characters, or holding
// U+0000, checked in that order. No task has such an id, and PostgreSQL
// text cannot even be asked about the first and the last. It is nil for
// any other id.
func CheckTaskID(field, id string) *Error {
	switch n := utf8.RuneCountInString(id); {
	case !utf8.ValidString(id):
		return InvalidParams("%s: is not valid UTF-8", field)
	case n > MaxTaskIDLength:
		return InvalidParams("%s: must be at most %d characters long, got %d", field, MaxTaskIDLength, n)
	case strings.ContainsRune(id, 0):
		return nulError(field)
	}
	return nil
}

// TaskRef returns the task id, from id or taskId.
func (p *CompleteParams) TaskRef() string {
	if p.ID != "" {
		return p.ID
	}
	return p.TaskID
}

// Validate checks that the task is named by id or taskId, that a failure
// (error) comes without a result, which a failed task does not keep, and
// that the result fits its limit.
func (p *CompleteParams) Validate() error {
	if _, err := oneOf("id", p.ID, "taskId", p.TaskID); err != nil {
		return err
	}
	if p.Error != nil && p.Result != nil {
		return InvalidParams("result: give result or error, not both (a failed task keeps no result)")
	}
	if err := checkNoNUL("id", p.ID, "taskId", p.TaskID, "error", deref(p.Error)); err != nil {
		return err
	}
	if len(p.Result) > MaxResultBytes {
		return TooLarge("result", MaxResultBytes)
	}
	return nil
}

// Worker returns the worker id, from workerId or instanceId.
func (p *AssignParams) Worker() string {
	if p.WorkerID != "" {
		return p.WorkerID
	}
	return p.InstanceID
}

// Validate checks that the worker is named by workerId or instanceId and
// that the task id holds no U+0000.
func (p *AssignParams) Validate() error {
	if _, err := oneOf("workerId", p.WorkerID, "instanceId", p.InstanceID); err != nil {
		return err
	}
	return checkNoNUL("taskId", p.TaskID)
}

// Worker returns the worker id, from id or workerId.
func (p *RegisterParams) Worker() string {
	if p.ID != "" {
		return p.ID
	}
	return p.WorkerID
}

// Validate checks that the worker is named and its metadata fits its limit
// (compacting it when it fits only so).
func (p *RegisterParams) Validate() error {
	if _, err := oneOf("id", p.ID, "workerId", p.WorkerID); err != nil {
		return err
	}
	return checkMetadata("metadata", &p.Metadata)
}

// Worker returns the worker id, from instanceId or workerId.
func (p *HeartbeatParams) Worker() string {
	if p.WorkerID != "" {
		return p.WorkerID
	}
	return p.InstanceID
}

// Validate checks that the worker is named by instanceId or workerId.
func (p *HeartbeatParams) Validate() error {
	_, err := oneOf("instanceId", p.InstanceID, "workerId", p.WorkerID)
	return err
}

// Worker returns the worker id, from id or workerId.
func (p *UnregisterParams) Worker() string {
	if p.ID != "" {
		return p.ID
	}
	return p.WorkerID
}

// Validate checks that the worker is named by id or workerId.
func (p *UnregisterParams) Validate() error {
	_, err := oneOf("id", p.ID, "workerId", p.WorkerID)
	return err
}
