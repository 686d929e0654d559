package server

import (
	"testing"

	"github.com/taskwire/taskwire"
)

// TestNULRefused: a string holding U+0000 (which PostgreSQL text cannot
// hold) is -32602 naming the field, in every mode alike, and changes
// nothing.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	createTask(t, b, params{"text": "claimed"})
	claimed := claimOne(t, b, "w1")
	tk := createTask(t, b, params{"text": "whole"})
	nul := "a\x00b"
	tests := []struct {
		method string
		p      params
		field  string
	}{
		{taskwire.MethodTaskCreate, params{"text": nul}, "text"},
		{taskwire.MethodTaskCreate, params{"text": "ok", "idempotencyKey": nul}, "idempotencyKey"},
		{taskwire.MethodTaskUpdate, params{"id": tk.ID, "updates": params{"text": nul}}, "updates.text"},
		{taskwire.MethodTaskUpdate, params{"id": nul, "updates": params{"priority": 1}}, "id"},
		{taskwire.MethodTaskComplete, params{"id": claimed.ID, "workerId": "w1", "error": nul}, "error"},
		{taskwire.MethodTaskComplete, params{"taskId": nul, "workerId": "w1", "result": 1}, "taskId"},
		{taskwire.MethodTaskGet, params{"id": nul}, "id"},
		{taskwire.MethodTaskDelete, params{"id": nul}, "id"},
		{taskwire.MethodTaskAssign, params{"taskId": nul, "workerId": "w1"}, "taskId"},
		{taskwire.MethodTaskUnassign, params{"taskId": nul}, "taskId"},
		{taskwire.MethodTaskList, params{"assignedTo": nul}, "assignedTo"},
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.field, func(t *testing.T) {
			wantInvalid(t, b, tt.method, tt.p, tt.field)
		})
	}
	if n := taskCount(t, b); n != 2 {
		t.Errorf("%d tasks after the refused calls, want 2", n)
	}
	wantUnchanged(t, b, tk)
	if got := getTask(t, b, claimed.ID); got.Status != taskwire.StatusInProgress {
		t.Errorf("claimed task is %s after a refused completion, want in_progress", got.Status)
	}
}
