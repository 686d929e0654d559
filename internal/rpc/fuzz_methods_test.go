package rpc

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
)

// methodParams are the params types of every method of the contract, as
// the method table registers them.
var methodParams = []reflect.Type{
	reflect.TypeFor[taskwire.CreateParams](), reflect.TypeFor[taskwire.ClaimParams](),
	reflect.TypeFor[taskwire.UpdateParams](), reflect.TypeFor[taskwire.CompleteParams](),
	reflect.TypeFor[taskwire.ListParams](), reflect.TypeFor[taskwire.GetParams](),
	reflect.TypeFor[taskwire.AssignParams](), reflect.TypeFor[taskwire.UnassignParams](),
	reflect.TypeFor[taskwire.DeleteParams](), reflect.TypeFor[taskwire.RegisterParams](),
	reflect.TypeFor[taskwire.HeartbeatParams](), reflect.TypeFor[taskwire.UnregisterParams](),
	reflect.TypeFor[taskwire.NoParams](),
	reflect.TypeFor[taskwire.SubscribeParams](), reflect.TypeFor[taskwire.UnsubscribeParams](),
}

// FuzzMethodParams decodes and validates any params object as the params
// of one real method (chosen by the first argument), as a call of it
// would: the depth bound, the schema, then its Validate rules. It never
// panics; a refusal is a well-formed -32602 or -32004; params it accepts
// are valid UTF-8 and decode as encoding/json decodes them. Seeds:
// testdata/fuzz/FuzzMethodParams.
func FuzzMethodParams(f *testing.F) {
	types := make([]*paramsType, len(methodParams))
	for i, rt := range methodParams {
		types[i] = newParamsType(rt.Name(), rt)
	}
	for i, seed := range []string{
		`{"text":"x","priority":5,"metadata":{"a":1},"queue":"q","delayMs":10,"maxAttempts":2,"leaseMs":5000,"idempotencyKey":"k"}`,
		`{"workerId":"w1","maxTasks":2,"queues":["q","default"],"waitMs":0}`,
		`{"id":"t-1","updates":{"text":"y","status":"pending","priority":9,"metadata":{"b":null}},"workerId":"w1","attempt":1}`,
		`{"id":"t-1","workerId":"w1","result":{"r":[1]},"attempt":1}`,
		`{"status":"pending","assignedTo":"w1","priority":5,"queue":"q","limit":5,"offset":1,"orderBy":"priority","order":"asc"}`,
		`{"id":"t-1"}`, `{"taskId":"t-1","workerId":"w1"}`, `{"taskId":"t-1"}`, `{"id":"t-1"}`,
		`{"id":"w1","roles":["r"],"queues":["q"],"metadata":{"m":1}}`, `{"workerId":"w1"}`, `{"id":"w1"}`, `{}`,
		`{"types":["task.created","worker.offline"],"taskId":"t-1","afterEventId":"42"}`, `{"subscription":"s1"}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		if !json.Valid(data) || data[skipSpace(data, 0)] != '{' {
			return // the envelope refuses these before params are read
		}
		rt := methodParams[int(method)%len(methodParams)]
		p := reflect.New(rt)
		err := paramsError(types[int(method)%len(types)], data, p)
		if err != nil {
			var e *taskwire.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v is not a JSON-RPC error", rt.Name(), err)
			}
			checkRefusal(t, rt.Name(), e)
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("%s accepted invalid UTF-8: %q", rt.Name(), data)
		}
		want := reflect.New(rt)
		if err := json.Unmarshal(data, want.Interface()); err != nil {
			t.Fatalf("%s accepted %q, which encoding/json refuses: %v", rt.Name(), data, err)
		}
		if !reflect.DeepEqual(p.Interface(), want.Interface()) {
			t.Fatalf("%s decoded %+v, encoding/json %+v", rt.Name(), p.Interface(), want.Interface())
		}
	})
}

// paramsError runs the checks of a call on data decoded into p.
func paramsError(pt *paramsType, data []byte, p reflect.Value) error {
	if e := checkDepth(data); e != nil {
		return e
	}
	if err := pt.decode(data, !utf8.Valid(data), p.Elem()); err != nil {
		return err
	}
	if v, ok := p.Interface().(validator); ok {
		return v.Validate()
	}
	return nil
}

// checkRefusal checks that e is a well-formed -32602 or -32004.
func checkRefusal(t *testing.T, method string, e *taskwire.Error) {
	data, _ := e.Data.(map[string]any)
	switch e.Code {
	case taskwire.CodeInvalidParams:
		text, ok := strings.CutPrefix(e.Message, "Invalid params: ")
		if !ok || data["validation"] != text {
			t.Fatalf("%s: malformed -32602 %+v", method, e)
		}
	case taskwire.CodeTooLarge:
		if data["field"] == "" || data["limit"] == nil {
			t.Fatalf("%s: malformed -32004 %+v", method, e)
		}
	default:
		t.Fatalf("%s: refused with %d %q, want -32602 or -32004", method, e.Code, e.Message)
	}
}
