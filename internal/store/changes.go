package store

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/taskwire/taskwire"
)

// ChangedFields names the fields of task.update (text, status, priority,
// metadata, in that order) whose value differs between before and after:
// the changes of a task.updated event. Metadata is compared as a JSON
// value, so a re-encoding of the same object is no change.
func ChangedFields(before, after *taskwire.Task) []string {
	changes := []string{}
	if before.Text != after.Text {
		changes = append(changes, "text")
	}
	if before.Status != after.Status {
		changes = append(changes, "status")
	}
	if before.Priority != after.Priority {
		changes = append(changes, "priority")
	}
	if !sameJSON(before.Metadata, after.Metadata) {
		changes = append(changes, "metadata")
	}
	return changes
}

// sameJSON reports whether a and b encode the same JSON value; empty and
// null are the same.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if len(a) > 0 {
		if err := json.Unmarshal(a, &va); err != nil {
			return false
		}
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &vb); err != nil {
			return false
		}
	}
	return reflect.DeepEqual(va, vb)
}
