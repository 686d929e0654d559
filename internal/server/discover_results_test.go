package server

import (
	"bytes"
	"encoding/json"
	"testing"

	compiler "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/taskwire/taskwire"
)

// TestResultsMatchDiscover: the answers of every method, in the states
// that shape them differently (a task pending, in progress, final; an
// assignment present and absent), validate against the result schema
// rpc.discover publishes for it.
func TestResultsMatchDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type document struct {
		Methods []struct {
			Name   string `json:"name"`
			Result struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"result"`
		} `json:"methods"`
	}
	schemas := map[string]*compiler.Schema{}
	for _, m := range call[document](t, b, taskwire.MethodDiscover, params{}).Methods {
		doc, err := compiler.UnmarshalJSON(bytes.NewReader(m.Result.Schema))
		if err != nil {
			t.Fatalf("%s result schema: %v", m.Name, err)
		}
		c := compiler.NewCompiler()
		if err := c.AddResource("urn:result:"+m.Name, doc); err != nil {
			t.Fatal(err)
		}
		if schemas[m.Name], err = c.Compile("urn:result:" + m.Name); err != nil {
			t.Fatalf("%s result schema: %v", m.Name, err)
		}
	}
	check := func(method string, p params) json.RawMessage {
		t.Helper()
		raw := call[json.RawMessage](t, b, method, p)
		v, err := compiler.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[method].Validate(v); err != nil {
			t.Errorf("%s %s: answer %s does not match its rpc.discover schema: %v", method, jsonText(p), clipText(string(raw)), err)
		}
		return raw
	}
	check(taskwire.MethodSystemRegister, params{"id": "w1", "queues": []string{"default"}, "metadata": params{"host": "h"}})
	check(taskwire.MethodSystemRegister, params{"id": "w2"})
	created := createTask(t, b, params{"text": "first"})
	check(taskwire.MethodTaskCreate, params{"text": "second", "metadata": params{"k": 1}, "delayMs": 0})
	check(taskwire.MethodTaskGet, params{"id": created.ID})
	check(taskwire.MethodTaskUnassign, params{"taskId": created.ID}) // no assignment: previousAssignment null
	check(taskwire.MethodTaskAssign, params{"taskId": created.ID, "workerId": "w2"})
	check(taskwire.MethodTaskUnassign, params{"taskId": created.ID})
	check(taskwire.MethodTaskClaim, params{"workerId": "w1", "maxTasks": 1})
	check(taskwire.MethodTaskClaim, params{"workerId": "w2", "maxTasks": 10})
	check(taskwire.MethodTaskClaim, params{"workerId": "w2"}) // nothing left
	check(taskwire.MethodTaskUpdate, params{"id": created.ID, "updates": params{"metadata": params{"progress": 50}}})
	check(taskwire.MethodSystemHeartbeat, params{"workerId": "w1"})
	check(taskwire.MethodSystemWorkers, params{})
	check(taskwire.MethodTaskComplete, params{"id": created.ID, "workerId": "w1", "result": []int{1, 2}})
	check(taskwire.MethodTaskGet, params{"id": created.ID})
	check(taskwire.MethodTaskList, params{})
	check(taskwire.MethodSystemHealth, params{})
	check(taskwire.MethodSystemMetrics, params{})
	check(taskwire.MethodTaskDelete, params{"id": created.ID})
	check(taskwire.MethodSystemUnregister, params{"workerId": "w2"})
}
