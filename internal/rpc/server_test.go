package rpc

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// TestTransport checks the rules of JSON-RPC 2.0 over HTTP, one case each.
func TestTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})

	const (
		invalidNull = `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: %s"},"id":null}`
		parseErr    = `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`
	)
	invalid := func(id, msg string) string {
		return `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: ` + msg + `"},"id":` + id + `}`
	}
	tests := []struct {
		name   string
		body   string
		status int
		want   string // "" for no body
	}{
		// A call gets its result and its id back.
		{"call", `{"jsonrpc":"2.0","method":"echo","params":{"text":"hi"},"id":1}`,
			200, `{"jsonrpc":"2.0","result":{"text":"hi"},"id":1}`},
		// A string id is echoed.
		{"string id", `{"jsonrpc":"2.0","method":"none","id":"a-1"}`,
			200, `{"jsonrpc":"2.0","result":"ok","id":"a-1"}`},
		// A null id is a call, not a notification: it is answered with null.
		{"null id", `{"jsonrpc":"2.0","method":"none","id":null}`,
			200, `{"jsonrpc":"2.0","result":"ok","id":null}`},
		// A fractional id is echoed as sent.
		{"fractional id", `{"jsonrpc":"2.0","method":"none","id":-1.5e3}`,
			200, `{"jsonrpc":"2.0","result":"ok","id":-1.5e3}`},
		// Members come in any order, with any whitespace.
		{"member order", " \n{ \"id\" : 7 , \"params\" : { } , \"method\" : \"none\" , \"jsonrpc\" : \"2.0\" }\t",
			200, `{"jsonrpc":"2.0","result":"ok","id":7}`},
		// Escapes in jsonrpc and method are read as JSON strings.
		{"escaped members", `{"jsonrpc":"2\u002e0","method":"n\u006fne","id":1}`,
			200, `{"jsonrpc":"2.0","result":"ok","id":1}`},
		// Missing params are an empty object.
		{"missing params", `{"jsonrpc":"2.0","method":"none","id":1}`,
			200, `{"jsonrpc":"2.0","result":"ok","id":1}`},
		// A notification gets no response, only 204.
		{"notification", `{"jsonrpc":"2.0","method":"none"}`, 204, ""},
		// A notification of an unknown method gets no response either.
		{"notification unknown method", `{"jsonrpc":"2.0","method":"nope"}`, 204, ""},
		// Nor does a notification with invalid params.
		{"notification bad params", `{"jsonrpc":"2.0","method":"echo","params":{"text":""}}`, 204, ""},
		// Nor one that fails.
		{"notification error", `{"jsonrpc":"2.0","method":"fail","params":{"kind":"internal"}}`, 204, ""},
		// A body that is not JSON is a parse error with id null.
		{"not JSON", `{"jsonrpc":"2.0","method":"none","id":1`, 200, parseErr},
		// An empty body is not JSON.
		{"empty body", ``, 200, parseErr},
		// Trailing garbage makes the body not JSON.
		{"trailing garbage", `{"jsonrpc":"2.0","method":"none","id":1} x`, 200, parseErr},
		// Two objects in a row are not one JSON value.
		{"two objects", `{"jsonrpc":"2.0","method":"none","id":1}{}`, 200, parseErr},
		// A truncated batch is not JSON.
		{"truncated batch", `[{"jsonrpc":"2.0","method":"none","id":1},`, 200, parseErr},
		// jsonrpc must be exactly "2.0"; the id is read all the same.
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","method":"none","id":3}`, 200, invalid("3", `jsonrpc must be \"2.0\"`)},
		// jsonrpc is required.
		{"jsonrpc missing", `{"method":"none","id":"x"}`, 200, invalid(`"x"`, `jsonrpc must be \"2.0\"`)},
		// jsonrpc must be a string.
		{"jsonrpc number", `{"jsonrpc":2.0,"method":"none","id":3}`, 200, invalid("3", `jsonrpc must be \"2.0\"`)},
		// method is required; an invalid request without id is still answered.
		{"method missing", `{"jsonrpc":"2.0"}`, 200, invalid("null", "method must be a string")},
		// method must be a string.
		{"method number", `{"jsonrpc":"2.0","method":1,"id":4}`, 200, invalid("4", "method must be a string")},
		// id must be a string, number or null; when it is not, the answer has id null.
		{"id object", `{"jsonrpc":"2.0","method":"none","id":{"a":1}}`, 200, invalid("null", "id must be a string, a number or null")},
		// A boolean id is not an id.
		{"id bool", `{"jsonrpc":"2.0","method":"none","id":true}`, 200, invalid("null", "id must be a string, a number or null")},
		// params must be structured.
		{"params string", `{"jsonrpc":"2.0","method":"none","params":"x","id":5}`, 200, invalid("5", "params must be an object or an array")},
		// params null is not structured either.
		{"params null", `{"jsonrpc":"2.0","method":"none","params":null,"id":5}`, 200, invalid("5", "params must be an object or an array")},
		// Unknown members make the request invalid.
		{"unknown member", `{"jsonrpc":"2.0","method":"none","id":6,"extra":1}`, 200, invalid("6", `unknown member \"extra\"`)},
		// A member given twice makes it invalid.
		{"duplicate member", `{"jsonrpc":"2.0","method":"none","method":"echo","id":6}`, 200, invalid("6", `member \"method\" given twice`)},
		// A JSON value that is not an object is not a request.
		{"number body", `42`, 200, strings.Replace(invalidNull, "%s", "a request must be an object", 1)},
		// Nor is a string.
		{"string body", `"hello"`, 200, strings.Replace(invalidNull, "%s", "a request must be an object", 1)},
		// Nor null.
		{"null body", `null`, 200, strings.Replace(invalidNull, "%s", "a request must be an object", 1)},
		// Invalid UTF-8 in the method is an invalid request.
		{"method bad UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"no\xffne\",\"id\":8}", 200, invalid("8", "method is not valid UTF-8")},
		// Invalid UTF-8 in the id: the id cannot be echoed.
		{"id bad UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"none\",\"id\":\"\xc3\"}", 200, invalid("null", "id is not valid UTF-8")},
		// An unknown method is -32601 naming it.
		{"unknown method", `{"jsonrpc":"2.0","method":"nope","id":9}`, 200,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope","data":{"method":"nope"}},"id":9}`},
		// Positional params are refused.
		{"positional params", `{"jsonrpc":"2.0","method":"echo","params":["hi"],"id":10}`, 200,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: params must be an object of named params","data":{"validation":"params must be an object of named params"}},"id":10}`},
		// Missing params are {} and then miss a required one.
		{"missing required params", `{"jsonrpc":"2.0","method":"echo","id":11}`, 200,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: text: is required","data":{"validation":"text: is required"}},"id":11}`},
		// An empty batch is one Invalid Request, not an array.
		{"empty batch", `[]`, 200, strings.Replace(invalidNull, "%s", "empty batch", 1)},
		// An empty batch with whitespace too.
		{"empty batch spaced", " [ \n ] ", 200, strings.Replace(invalidNull, "%s", "empty batch", 1)},
		// A batch is answered with an array: calls and errors, no notifications.
		{"batch", `[{"jsonrpc":"2.0","method":"echo","params":{"text":"a"},"id":1},
			{"jsonrpc":"2.0","method":"none"},
			{"jsonrpc":"2.0","method":"nope","id":2},
			{"jsonrpc":"2.0","method":"echo","params":{"text":"b"},"id":"3"}]`, 200,
			`[{"jsonrpc":"2.0","result":{"text":"a"},"id":1},
			{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope","data":{"method":"nope"}},"id":2},
			{"jsonrpc":"2.0","result":{"text":"b"},"id":"3"}]`},
		// A batch of notifications only gets 204 and no body.
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"none"},{"jsonrpc":"2.0","method":"nope"}]`, 204, ""},
		// Each entry that is not an object is one Invalid Request.
		{"batch of numbers", `[1,2]`, 200, "[" + invalid("null", "a request must be an object") + "," +
			invalid("null", "a request must be an object") + "]"},
		// A nested batch is an entry that is not an object.
		{"nested batch", `[[]]`, 200, "[" + invalid("null", "a request must be an object") + "]"},
		// An invalid entry does not spoil the others.
		{"batch with invalid entry", `[{"jsonrpc":"2.0","method":"none","id":1},{"jsonrpc":"1.0","method":"none","id":2}]`, 200,
			`[{"jsonrpc":"2.0","result":"ok","id":1},` + invalid("2", `jsonrpc must be \"2.0\"`) + `]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, out := b.do(t, http.MethodPost, strings.NewReader(tt.body))
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.want == "" {
				if len(out) != 0 {
					t.Errorf("body %q, want none", out)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if diff := cmp.Diff(decodeJSON(t, []byte(tt.want)), decodeJSON(t, out)); diff != "" {
				t.Errorf("response (-want +got):\n%s\ngot %s", diff, out)
			}
		})
	}
}

// TestHTTPMethod checks that only POST is served: another method is a
// -32600, HTTP 200 as every JSON-RPC response (SPEC 1).
func TestHTTPMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, verb := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		resp, out := b.do(t, verb, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", verb, resp.StatusCode)
		}
		want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: HTTP method ` + verb +
			` is not allowed, use POST"},"id":null}`
		if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, out)); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", verb, diff)
		}
	}
}

// TestBodyLimit checks that a body over MaxBodyBytes is refused with 413
// and -32004, whether its length is announced or not.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{MaxBodyBytes: 100})
	want := `{"jsonrpc":"2.0","error":{"code":-32004,"message":"Payload too large: body is over 100 bytes",` +
		`"data":{"field":"body","limit":100}},"id":null}`
	big := `{"jsonrpc":"2.0","method":"echo","params":{"text":"` + strings.Repeat("x", 100) + `"},"id":1}`
	tests := []struct {
		name string
		body io.Reader
	}{
		// Content-Length over the limit: refused before reading.
		{"announced", bytes.NewReader([]byte(big))},
		// Chunked body that grows over the limit while read.
		{"chunked", iotest.HalfReader(strings.NewReader(big))},
	}
	for _, tt := range tests {
		resp, out := b.do(t, http.MethodPost, tt.body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413", tt.name, resp.StatusCode)
		}
		if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, out)); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tt.name, diff)
		}
	}
	// A body right at the limit is served.
	small := `{"jsonrpc":"2.0","method":"none","id":1}`
	small += strings.Repeat(" ", 100-len(small))
	if status, out := b.post(t, small); status != http.StatusOK {
		t.Errorf("body of 100 bytes: status %d, body %s", status, out)
	}
}

// TestClientAddr checks that methods see the client's address.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	result, e := b.call(t, `{"jsonrpc":"2.0","method":"addr","id":1}`)
	if e != nil {
		t.Fatal(e)
	}
	if got := string(result); !strings.HasPrefix(got, `"127.0.0.1:`) {
		t.Errorf("ClientAddr = %s, want 127.0.0.1:port", got)
	}
}

// TestObserve checks that every call of a registered method is observed
// with its code, calls of unknown methods under the one name
// UnknownMethod whatever they name (a client must not grow the series
// without bound), and nothing else.
func TestObserve(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.post(t, `[{"jsonrpc":"2.0","method":"none","id":1},
		{"jsonrpc":"2.0","method":"echo","params":{},"id":2},
		{"jsonrpc":"2.0","method":"fail","params":{"kind":"conflict"}},
		{"jsonrpc":"2.0","method":"nope","id":3},
		{"jsonrpc":"2.0","method":"nope.again"},
		{"jsonrpc":"1.0","method":"none","id":4}]`)
	want := []string{"echo -32602", "fail -32003", "none 0", "unknown -32601", "unknown -32601"}
	b.mu.Lock()
	defer b.mu.Unlock()
	var got []string
	for _, o := range b.observed {
		got = append(got, fmt.Sprintf("%s %d", o.method, o.code))
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}
