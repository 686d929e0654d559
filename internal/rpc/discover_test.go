package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// wireMethod registers a dummy method of the params type P.
func wireMethod[P any](name string) (Method, reflect.Type) {
	return Register(name, "Does "+name+".", func(context.Context, *P) (*taskwire.Task, error) { return nil, nil }),
		reflect.TypeFor[P]()
}

// TestDiscover checks that rpc.discover returns an OpenRPC document that
// lists every method with params whose bounds are those of the tags.
func TestDiscover(t *testing.T) {
	t.Parallel()
	types := map[string]reflect.Type{}
	var methods []Method
	add := func(m Method, p reflect.Type) {
		methods = append(methods, m)
		types[m.name] = p
	}
	add(wireMethod[taskwire.CreateParams](taskwire.MethodTaskCreate))
	add(wireMethod[taskwire.ClaimParams](taskwire.MethodTaskClaim))
	add(wireMethod[taskwire.UpdateParams](taskwire.MethodTaskUpdate))
	add(wireMethod[taskwire.CompleteParams](taskwire.MethodTaskComplete))
	add(wireMethod[taskwire.ListParams](taskwire.MethodTaskList))
	add(wireMethod[taskwire.GetParams](taskwire.MethodTaskGet))
	add(wireMethod[taskwire.AssignParams](taskwire.MethodTaskAssign))
	add(wireMethod[taskwire.UnassignParams](taskwire.MethodTaskUnassign))
	add(wireMethod[taskwire.DeleteParams](taskwire.MethodTaskDelete))
	add(wireMethod[taskwire.RegisterParams](taskwire.MethodSystemRegister))
	add(wireMethod[taskwire.HeartbeatParams](taskwire.MethodSystemHeartbeat))
	add(wireMethod[taskwire.UnregisterParams](taskwire.MethodSystemUnregister))
	add(wireMethod[taskwire.NoParams](taskwire.MethodSystemWorkers))
	s := NewServer(methods, Options{Version: "1.2.3"})

	out := s.handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"rpc.discover","id":1}`))
	var resp struct {
		Result struct {
			OpenRPC string `json:"openrpc"`
			Info    struct {
				Title, Version string
			} `json:"info"`
			Methods []struct {
				Name           string `json:"name"`
				Summary        string `json:"summary"`
				ParamStructure string `json:"paramStructure"`
				Params         []struct {
					Name     string `json:"name"`
					Required bool   `json:"required"`
					// Schema is an object, or true for any value.
					Schema any `json:"schema"`
				} `json:"params"`
				Result struct {
					Name   string `json:"name"`
					Schema any    `json:"schema"`
				} `json:"result"`
			} `json:"methods"`
		} `json:"result"`
	}
	if len(out) != 1 {
		t.Fatalf("%d response parts", len(out))
	}
	if err := json.Unmarshal(out[0], &resp); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	doc := resp.Result
	if doc.OpenRPC != "1.2.6" || doc.Info.Title != "taskwire" || doc.Info.Version != "1.2.3" {
		t.Errorf("openrpc %q, info %+v", doc.OpenRPC, doc.Info)
	}
	var names []string
	for _, m := range doc.Methods {
		names = append(names, m.Name)
		if m.ParamStructure != "by-name" || m.Summary != "Does "+m.Name+"." || m.Result.Name != "result" {
			t.Errorf("%s: paramStructure %q, summary %q, result %q", m.Name, m.ParamStructure, m.Summary, m.Result.Name)
		}
		typ := types[m.Name]
		if len(m.Params) != typ.NumField() {
			t.Errorf("%s: %d params, want %d", m.Name, len(m.Params), typ.NumField())
		}
		for i, p := range m.Params {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if p.Name != name {
				t.Errorf("%s: param %d is %q, want %q", m.Name, i, p.Name, name)
			}
			if want := !strings.Contains(opts, "omitempty"); p.Required != want {
				t.Errorf("%s.%s: required %v, want %v", m.Name, name, p.Required, want)
			}
			schema, _ := p.Schema.(map[string]any)
			if schema == nil && p.Schema != true {
				t.Errorf("%s.%s: schema %v", m.Name, name, p.Schema)
			}
			checkBounds(t, m.Name+"."+name, f, schema)
		}
	}
	var want []string
	for _, m := range methods {
		want = append(want, m.name)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
	// The example of the contract: task.create's priority is 0..100.
	priority := doc.Methods[0].Params[1]
	if schema, _ := priority.Schema.(map[string]any); priority.Name != "priority" ||
		schema["maximum"] != 100.0 || schema["minimum"] != 0.0 {
		t.Errorf("task.create priority: %+v", priority)
	}
}

// checkBounds checks that each bound in the jsonschema tag of field f is in
// its published schema s (in s.items for the item bounds of an array).
func checkBounds(t *testing.T, where string, f reflect.StructField, s map[string]any) {
	t.Helper()
	var enum []any
	for _, kv := range strings.Split(f.Tag.Get("jsonschema"), ",") {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		target := s
		if items, ok := s["items"].(map[string]any); ok && key != "maxItems" && key != "minItems" && key != "uniqueItems" {
			target = items
		}
		switch key {
		case "minimum", "maximum", "minLength", "maxLength", "maxItems", "minItems":
			if got := target[key]; got != mustNumber(t, val) {
				t.Errorf("%s: %s %v, want %s", where, key, got, val)
			}
		case "pattern":
			if got := target[key]; got != val {
				t.Errorf("%s: pattern %v, want %s", where, got, val)
			}
		case "uniqueItems":
			if got := target[key]; got != true {
				t.Errorf("%s: uniqueItems %v, want true", where, got)
			}
		case "enum":
			enum = append(enum, val)
		case "oneof_type":
			var want []any
			for _, typ := range strings.Split(val, ";") {
				want = append(want, map[string]any{"type": typ})
			}
			if diff := cmp.Diff(want, target["oneOf"]); diff != "" {
				t.Errorf("%s: oneOf (-want +got):\n%s", where, diff)
			}
		}
	}
	if enum != nil {
		if diff := cmp.Diff(enum, s["enum"]); diff != "" {
			t.Errorf("%s: enum (-want +got):\n%s", where, diff)
		}
	}
}

func mustNumber(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("bound %q: %v", s, err)
	}
	return f
}

// TestDiscoverIsSchema checks that the schema rpc.discover publishes is the
// one that validates: a value at a published bound passes, one past it
// fails.
func TestDiscoverIsSchema(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	result, e := b.call(t, `{"jsonrpc":"2.0","method":"rpc.discover","id":1}`)
	if e != nil {
		t.Fatal(e)
	}
	var doc struct {
		Methods []struct {
			Name   string
			Params []struct {
				Name   string
				Schema json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(result, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Methods {
		if m.Name != "echo" {
			continue
		}
		for _, p := range m.Params {
			if p.Name != "n" {
				continue
			}
			var schema struct{ Maximum int }
			if err := json.Unmarshal(p.Schema, &schema); err != nil {
				t.Fatal(err)
			}
			max := schema.Maximum
			if _, e := b.call(t, fmt.Sprintf(`{"jsonrpc":"2.0","method":"echo","params":{"text":"a","n":%d},"id":1}`, max)); e != nil {
				t.Errorf("n at its maximum %d: %v", max, e)
			}
			if _, e := b.call(t, fmt.Sprintf(`{"jsonrpc":"2.0","method":"echo","params":{"text":"a","n":%d},"id":1}`, max+1)); e == nil {
				t.Errorf("n over its maximum %d: no error", max)
			}
			return
		}
	}
	t.Fatal("echo's param n not in the document")
}

// TestDiscoverRejectsParams checks that rpc.discover, which takes no
// params, refuses unknown ones like any method.
func TestDiscoverRejectsParams(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, e := b.call(t, `{"jsonrpc":"2.0","method":"rpc.discover","params":{"x":1},"id":1}`)
	if e == nil || e.Code != taskwire.CodeInvalidParams || e.Message != "Invalid params: x: unknown param" {
		t.Errorf("error %+v", e)
	}
}
