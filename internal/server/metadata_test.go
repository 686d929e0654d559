package server

import (
	"encoding/json"
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
