package rpc

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// TestInvalidParams checks that each kind of bad params is a -32602 whose
// message and data name the field and say what is wrong.
func TestInvalidParams(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name   string
		method string
		params string
		want   string // the validation text
	}{
		// Over a maximum.
		{"maximum", "task.create", `{"text":"a","priority":101}`, "priority: must be <= 100, got 101"},
		// Under a minimum.
		{"minimum", "task.create", `{"text":"a","maxAttempts":0}`, "maxAttempts: must be >= 1, got 0"},
		// A required param is missing.
		{"required", "task.create", `{"priority":5}`, "text: is required"},
		// A pattern is not matched.
		{"pattern", "task.create", `{"text":"a","queue":"Bad Queue"}`, "queue: does not match ^[a-z0-9_.-]+$"},
		// Wrong type.
		{"type", "task.claim", `{"workerId":42}`, "workerId: must be a string, got number"},
		// A fraction where an integer is wanted.
		{"integer", "task.create", `{"text":"a","priority":1.5}`, "priority: must be an integer, got number"},
		// An unknown param is named.
		{"unknown", "task.create", `{"text":"a","foo":1}`, "foo: unknown param"},
		// Param names are case-sensitive.
		{"case", "task.create", `{"Text":"a"}`, "Text: unknown param; text: is required"},
		// An unknown member of a nested object is named with its path.
		{"nested unknown", "task.update", `{"id":"t-1","updates":{"colour":"red"}}`, "updates.colour: unknown param"},
		// Nested bounds are checked.
		{"nested enum", "task.update", `{"id":"t-1","updates":{"status":"done"}}`,
			"updates.status: must be one of pending, in_progress, completed, failed, got done"},
		// Too short.
		{"minLength", "task.create", `{"text":""}`, "text: must be at least 1 character long, got 0"},
		// Too long, counted in characters, not bytes.
		{"maxLength", "echo", `{"text":"ééééééééééé"}`, "text: must be at most 10 characters long, got 11"},
		// A RawMessage param constrained by type only.
		{"metadata type", "task.create", `{"text":"a","metadata":"x"}`, "metadata: must be an object or null, got string"},
		// A timestamp that is not one.
		{"date-time", "task.create", `{"text":"a","runAt":"tomorrow"}`, "runAt: must be a valid date-time"},
		// Array bounds and items.
		{"array items", "echo", `{"text":"a","tags":["ok","NOT"]}`, "tags[1]: does not match ^[a-z]+$"},
		// Too many items.
		{"maxItems", "echo", `{"text":"a","tags":["a","b","c","d"]}`, "tags: must have at most 3 items, got 4"},
		// Unique items.
		{"uniqueItems", "task.claim", `{"workerId":"w","queues":["a","a"]}`,
			"queues: must not repeat items, but items 0 and 1 are equal"},
		// null is not a value of an optional param.
		{"null", "task.create", `{"text":"a","priority":null}`, "priority: must be an integer, got null"},
		// A number too large to compute with.
		{"huge number", "task.create", `{"text":"a","priority":1e999}`, "priority: number 1e999 is out of range"},
		// A number with too many digits.
		{"long number", "task.create", `{"text":"a","priority":` + strings.Repeat("9", 200) + `}`,
			"priority: number 9999999999999999999999999999999999999... is out of range"},
		// A number out of range deep inside a param is named by its path.
		{"nested huge number", "echo", `{"text":"a","tags":["a",[{"k":-1e-999}]]}`,
			"tags[1][0].k: number -1e-999 is out of range"},
		// A value the schema accepts but the Go type cannot hold.
		{"does not fit", "task.update", `{"id":"t","updates":{},"attempt":1e19}`,
			"attempt: number 1e19 cannot be stored as int"},
		// An integer param is a number with no fraction, however written.
		{"fraction", "task.update", `{"id":"t","updates":{},"attempt":1.5}`,
			"attempt: must be an integer, got number"},
		// A param given twice.
		{"duplicate", "task.create", `{"text":"a","text":"b"}`, "text: given twice"},
		// Several faults are all named, sorted.
		{"several", "task.create", `{"priority":-1,"foo":true}`,
			"foo: unknown param; priority: must be >= 0, got -1; text: is required"},
		// Invalid UTF-8 in a string param.
		{"bad UTF-8", "echo", "{\"text\":\"a\xffb\"}", "text: is not valid UTF-8"},
		// Invalid UTF-8 deep inside an unconstrained param.
		{"bad UTF-8 nested", "task.complete", "{\"id\":\"t\",\"result\":{\"a\":[1,\"\xe2\x82\"]}}", "result.a[1]: is not valid UTF-8"},
		// An escaped half of a surrogate pair, alone, in a string param.
		{"lone surrogate", "echo", `{"text":"k\ud800"}`, "text: is not valid UTF-8 (an escaped lone surrogate)"},
		{"lone low surrogate", "task.create", `{"text":"a","idempotencyKey":"k\udc00"}`,
			"idempotencyKey: is not valid UTF-8 (an escaped lone surrogate)"},
		// Invalid UTF-8 in a param name.
		{"bad UTF-8 name", "echo", "{\"te\xc0xt\":\"a\"}", "a param name is not valid UTF-8"},
		// Invalid UTF-8 in a member name inside a param.
		{"bad UTF-8 nested name", "task.create", "{\"text\":\"a\",\"metadata\":{\"k\xff\":1}}", "metadata: a member name is not valid UTF-8"},
		// A Validate method's own *taskwire.Error.
		{"cross-field", "task.create", `{"text":"a","runAt":"2030-01-01T00:00:00Z","delayMs":5}`,
			"runAt and delayMs are mutually exclusive"},
		// A Validate method's plain error.
		{"plain Validate error", "cross", `{"a":2,"b":1}`, "a must not exceed b"},
		// The params of a method that takes none.
		{"no params wanted", "none", `{"x":1}`, "x: unknown param"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, e := b.call(t, `{"jsonrpc":"2.0","method":"`+tt.method+`","params":`+tt.params+`,"id":1}`)
			want := &rpcError{Code: taskwire.CodeInvalidParams, Message: "Invalid params: " + tt.want,
				Data: map[string]any{"validation": tt.want}}
			if diff := cmp.Diff(want, e); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateCode checks that a Validate method's error keeps its code.
func TestValidateCode(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	meta := `{"k":"` + strings.Repeat("x", taskwire.MaxMetadataBytes) + `"}`
	_, e := b.call(t, `{"jsonrpc":"2.0","method":"task.create","params":{"text":"a","metadata":`+meta+`},"id":1}`)
	want := &rpcError{Code: taskwire.CodeTooLarge, Message: "Payload too large: metadata is over 65536 bytes",
		Data: map[string]any{"field": "metadata", "limit": float64(taskwire.MaxMetadataBytes)}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestParamsDecoded checks that valid params reach the method whole:
// pointers, nested structs, raw JSON and timestamps.
func TestParamsDecoded(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name   string
		method string
		params string
		want   string // the result: the params as the method got them
	}{
		// Every kind of field of task.create.
		{"create", "task.create",
			`{"text":"a\u00e9","priority":0,"metadata":{"k":[1,{"n":null}]},"queue":"q.1","runAt":"2030-01-02T03:04:05.678+01:00","maxAttempts":100,"leaseMs":1000,"idempotencyKey":"k"}`,
			`{"text":"aé","priority":0,"metadata":{"k":[1,{"n":null}]},"queue":"q.1","runAt":"2030-01-02T02:04:05.678Z","maxAttempts":100,"leaseMs":1000,"idempotencyKey":"k"}`},
		// A nested struct decoded member by member.
		{"update", "task.update",
			`{"id":"t-1","updates":{"text":"b","status":"failed","priority":100,"metadata":null},"attempt":0}`,
			`{"id":"t-1","updates":{"text":"b","status":"failed","priority":100,"metadata":null},"attempt":0}`},
		// A pointer param, and an empty array that omitempty leaves out.
		{"echo", "echo", `{"text":"x","n":100,"tags":[]}`, `{"text":"x","n":100}`},
		// Integers written with a zero fraction or an exponent, as JSON
		// Schema's integer (and so rpc.discover) allows: a plain field, a
		// pointer, a field of a nested struct.
		{"integral numbers", "task.update",
			`{"id":"t-1","updates":{"priority":1.00e2},"attempt":3.0}`,
			`{"id":"t-1","updates":{"priority":100},"attempt":3}`},
		{"integral numbers create", "task.create",
			`{"text":"a","priority":-0.0,"maxAttempts":1e1,"leaseMs":15E2}`,
			`{"text":"a","priority":0,"maxAttempts":10,"leaseMs":1500}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			result, e := b.call(t, `{"jsonrpc":"2.0","method":"`+tt.method+`","params":`+tt.params+`,"id":1}`)
			if e != nil {
				t.Fatalf("error %+v", e)
			}
			if diff := cmp.Diff(decodeJSON(t, []byte(tt.want)), decodeJSON(t, result)); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRawParamAliasesBody checks that a json.RawMessage param is the
// sub-slice of the body, limited so that an append cannot write over it.
func TestRawParamAliasesBody(t *testing.T) {
	t.Parallel()
	var got *taskwire.CompleteParams
	m := Register("keep", "", func(_ context.Context, p *taskwire.CompleteParams) (int, error) {
		got = p
		return 0, nil
	})
	s := NewServer([]Method{m}, Options{})
	body := []byte(`{"jsonrpc":"2.0","method":"keep","params":{"id":"t","result": [1, 2] },"id":1}`)
	s.handle(context.Background(), body)
	if got == nil {
		t.Fatal("method not called")
	}
	if string(got.Result) != "[1, 2]" {
		t.Fatalf("result %q", got.Result)
	}
	if !aliases(body, got.Result) {
		t.Error("result is a copy, want a sub-slice of the body")
	}
	if cap(got.Result) != len(got.Result) {
		t.Errorf("cap %d, want %d", cap(got.Result), len(got.Result))
	}
}

// TestDeepParams checks that a param nested deeper than MaxDepth is
// refused naming it, before it is decoded, at a memory cost in proportion
// to its size.
func TestDeepParams(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	const depth = 9000
	s := NewServer(testMethods(), Options{})
	body := []byte(`{"jsonrpc":"2.0","method":"echo","params":{"text":"a","tags":` +
		strings.Repeat("[", depth) + "1e999" + strings.Repeat("]", depth) + `},"id":1}`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out := s.handle(context.Background(), body)
	runtime.ReadMemStats(&after)
	if len(out) != 1 || !bytes.Contains(out[0], []byte(`"Invalid params: tags: nested deeper than 64 levels`)) {
		t.Fatalf("response %.200s", bytes.Join(out, nil))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes for a %d-byte body", alloc, len(body))
	}
}

func TestHasLoneSurrogate(t *testing.T) {
	for v, want := range map[string]bool{
		`"plain"`:              false,
		`"\ud83d\ude00"`:       false, // a pair: U+1F600
		`"\u00e9\n\""`:         false,
		`"\\ud800"`:            false, // an escaped backslash, then text
		`"\ud800"`:             true,
		`"\udc00"`:             true,
		`"\ud800\u0041"`:       true, // a high half, then no low half
		`"\ud800\ud800\udc00"`: true,
		`["a","\uDBFF"]`:       true,
		`"\ud83d\ude00\udc00"`: true,
	} {
		if got := hasLoneSurrogate([]byte(v)); got != want {
			t.Errorf("hasLoneSurrogate(%s) = %v, want %v", v, got, want)
		}
	}
}
