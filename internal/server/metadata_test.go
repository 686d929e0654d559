package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
)

// The metadata limit (SPEC section 3: "at most 64 KiB encoded") holds for
// the object's compact encoding, the one taskwire stores and returns:
// neither the spaces of a pretty-printed object nor escapes such as
// \u003c for < count towards it. These tests send their bodies as raw
// text, since an encoder would compact the object or escape it.

// The merged object of task.update is measured and stored with <, > and &
// as they are, not as the 6-byte escapes of json.Marshal: a task whose
// metadata holds many of them keeps taking updates, and its metadata keeps
// its bytes.
func TestUpdateMetadataKeepsCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// 15,000 characters, 90 KB were each escaped.
	old := `{"a":"` + strings.Repeat("<&>", 5000) + `"}`
	res, rpcErr := rawCall(t, b, taskwire.MethodTaskCreate, `{"text":"x","metadata":`+old+`}`)
	if rpcErr != nil {
		t.Fatalf("create: %v", rpcErr)
	}
	id := rawString(t, rawJSON(t, res)["id"])

	res, rpcErr = rawCall(t, b, taskwire.MethodTaskUpdate, `{"id":"`+id+`","updates":{"metadata":{"b":1}}}`)
	if rpcErr != nil {
		t.Fatalf("update: %v", rpcErr)
	}
	want := strings.TrimSuffix(old, "}") + `,"b":1}`
	if got := string(rawJSON(t, res)["metadata"]); got != want {
		t.Errorf("update returned metadata %s, want %s", clipText(got), clipText(want))
	}
	res, rpcErr = rawCall(t, b, taskwire.MethodTaskGet, `{"id":"`+id+`"}`)
	if rpcErr != nil {
		t.Fatalf("get: %v", rpcErr)
	}
	if got := string(rawJSON(t, res)["metadata"]); got != want {
		t.Errorf("stored metadata %s, want %s", clipText(got), clipText(want))
	}
}

// system.workers returns a worker's metadata as stored, with <, > and &
// as they are, not as 6-byte escapes.
func TestWorkersMetadataKeepsCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	meta := `{"a":"<&>"}`
	if _, rpcErr := rawCall(t, b, taskwire.MethodSystemRegister, `{"id":"w1","metadata":`+meta+`}`); rpcErr != nil {
		t.Fatalf("register: %v", rpcErr)
	}
	res, rpcErr := rawCall(t, b, taskwire.MethodSystemWorkers, `{}`)
	if rpcErr != nil {
		t.Fatalf("system.workers: %v", rpcErr)
	}
	var workers struct{ Workers []json.RawMessage }
	if err := json.Unmarshal(res, &workers); err != nil || len(workers.Workers) != 1 {
		t.Fatalf("system.workers: %s (%v), want one worker", clipText(string(res)), err)
	}
	if got := string(rawJSON(t, workers.Workers[0])["metadata"]); got != meta {
		t.Errorf("metadata %s, want %s", got, meta)
	}
}

// Metadata over 64 KiB as sent but not in its compact encoding is taken,
// and stored in that encoding; metadata whose compact encoding is over is
// refused with -32004 naming the field. This holds for task.create,
// task.update (the patch) and system.register alike.
func TestMetadataLimitOnCompactEncoding(t *testing.T) {
	t.Parallel()
	const limit = taskwire.MaxMetadataBytes
	tests := []struct {
		name string
		sent string // the metadata as sent
		want string // its compact encoding; "" when it is refused
	}{
		// Pretty-printed, 64 KiB exactly once compacted.
		{"pretty at the limit", indent(t, compactObject(limit)), compactObject(limit)},
		{"pretty one byte over", indent(t, compactObject(limit+1)), ""},
		// Every & escaped (\u0026, the escape of encoding/json): 12 KB of
		// them are 72 KB as sent.
		{"escaped", `{"a":"` + strings.Repeat(`\u0026`, 12000) + `"}`,
			`{"a":"` + strings.Repeat("&", 12000) + `"}`},
		{"escaped one byte over", `{"a":"` + strings.Repeat(`\u0026`, limit-len(`{"a":""}`)+1) + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if len(tt.sent) <= limit {
				t.Fatalf("metadata of %d bytes as sent, want it over the limit", len(tt.sent))
			}

			// task.create
			b := setup(t)
			res, rpcErr := rawCall(t, b, taskwire.MethodTaskCreate, `{"text":"x","metadata":`+tt.sent+`}`)
			if checkMetadata(t, "task.create", res, rpcErr, "metadata", tt.want) && tt.want != "" {
				id := rawString(t, rawJSON(t, res)["id"])
				res, rpcErr = rawCall(t, b, taskwire.MethodTaskGet, `{"id":"`+id+`"}`)
				checkMetadata(t, "task.get", res, rpcErr, "", tt.want)
			}
			if n := taskCount(t, b); tt.want == "" && n != 0 {
				t.Errorf("a refused create made %d tasks", n)
			}

			// task.update of a task without metadata.
			task := createTask(t, b, params{})
			res, rpcErr = rawCall(t, b, taskwire.MethodTaskUpdate,
				`{"id":"`+task.ID+`","updates":{"metadata":`+tt.sent+`}}`)
			checkMetadata(t, "task.update", res, rpcErr, "updates.metadata", tt.want)
			if tt.want == "" {
				wantUnchanged(t, b, task)
			}

			// system.register
			_, rpcErr = rawCall(t, b, taskwire.MethodSystemRegister, `{"id":"w1","metadata":`+tt.sent+`}`)
			registered := checkMetadata(t, "system.register", nil, rpcErr, "metadata", tt.want) && tt.want != ""
			res, rpcErr = rawCall(t, b, taskwire.MethodSystemWorkers, `{}`)
			if rpcErr != nil {
				t.Fatalf("system.workers: %v", rpcErr)
			}
			var workers struct{ Workers []json.RawMessage }
			if err := json.Unmarshal(res, &workers); err != nil {
				t.Fatal(err)
			}
			if !registered {
				if len(workers.Workers) != 0 {
					t.Errorf("a refused register registered %d workers", len(workers.Workers))
				}
				return
			}
			if len(workers.Workers) != 1 {
				t.Fatalf("%d workers, want 1", len(workers.Workers))
			}
			checkMetadata(t, "system.workers", workers.Workers[0], nil, "", tt.want)
		})
	}
}

// checkMetadata checks the answer of a call: with want "", the -32004 of
// field; else a result (when res is not nil) whose metadata is want byte
// for byte. It reports whether the call answered as wanted.
func checkMetadata(tb testing.TB, call string, res json.RawMessage, rpcErr *taskwire.Error, field, want string) bool {
	tb.Helper()
	if want == "" {
		wantErr := taskwire.TooLarge(field, taskwire.MaxMetadataBytes)
		if rpcErr == nil || rpcErr.Code != wantErr.Code || jsonText(rpcErr.Data) != jsonText(wantErr.Data) {
			tb.Errorf("%s: error %v, want -32004 with data %s", call, rpcErr, jsonText(wantErr.Data))
			return false
		}
		return true
	}
	if rpcErr != nil {
		tb.Errorf("%s: %v", call, rpcErr)
		return false
	}
	if res == nil {
		return true
	}
	if got := string(rawJSON(tb, res)["metadata"]); got != want {
		tb.Errorf("%s: metadata %s (%d bytes), want %s (%d bytes)", call, clipText(got), len(got), clipText(want), len(want))
		return false
	}
	return true
}

// rawCall posts method with params, the params object as text, and returns
// the result or the error.
func rawCall(tb testing.TB, b *bundle, method, params string) (json.RawMessage, *taskwire.Error) {
	tb.Helper()
	status, raw := post(tb, b, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`)
	if status != http.StatusOK {
		tb.Fatalf("%s: HTTP %d: %s", method, status, clipText(string(raw)))
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *taskwire.Error `json:"error"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		tb.Fatalf("%s: undecodable answer %s: %v", method, clipText(string(raw)), err)
	}
	return resp.Result, resp.Error
}

// rawString decodes the JSON string raw.
func rawString(tb testing.TB, raw json.RawMessage) string {
	tb.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		tb.Fatalf("not a JSON string: %s", clipText(string(raw)))
	}
	return s
}

// compactObject returns a compact JSON object of exactly n bytes with
// thousands of members, which pretty-printing makes far longer.
func compactObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; b.Len() < n-40; i++ {
		fmt.Fprintf(&b, `"k%05d":1,`, i)
	}
	b.WriteString(`"pad":"` + strings.Repeat("x", n-b.Len()-len(`"pad":""}`)) + `"}`)
	return b.String()
}

// indent returns the JSON text s pretty-printed.
func indent(tb testing.TB, s string) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(s), "", "  "); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}
