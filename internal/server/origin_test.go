package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
)

// createBody is a task.create call, as a page would send it.
const createBody = `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"from a page"}}`

// rawRequest sends method path to b with host as Host (the URL's when
// ""), header and body, and returns the status and, unless the answer is
// a stream that would not end (a 2xx GET /events or a 101), the body.
func rawRequest(tb testing.TB, b *bundle, method, path, host string, header map[string]string, body string) (int, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols || (resp.StatusCode < 300 && path == "/events") {
		return resp.StatusCode, nil
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, raw
}

// wantRefused checks that an answer is HTTP 403 with a -32002 JSON-RPC
// error whose reason contains about.
func wantRefused(tb testing.TB, what string, status int, raw []byte, about string) {
	tb.Helper()
	var got struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *taskwire.Error `json:"error"`
		ID      json.RawMessage `json:"id"`
	}
	if status != http.StatusForbidden || json.Unmarshal(raw, &got) != nil || got.JSONRPC != "2.0" ||
		string(got.ID) != "null" || got.Error == nil || got.Error.Code != taskwire.CodeNotAllowed {
		tb.Errorf("%s: HTTP %d %s; want HTTP 403 and a -32002 JSON-RPC error", what, status, clipText(string(raw)))
		return
	}
	data, _ := got.Error.Data.(map[string]any)
	if reason, _ := data["reason"].(string); !strings.Contains(reason, about) || !strings.Contains(got.Error.Message, reason) {
		tb.Errorf("%s: error %q data %v; want a reason about %q", what, got.Error.Message, got.Error.Data, about)
	}
}

// TestCrossOriginCallsRefused: a page of another origin cannot call
// methods over POST /rpc, not even with a body no preflight precedes
// (text/plain), whether its browser sends Sec-Fetch-Site or only Origin;
// the call changes nothing.
func TestCrossOriginCallsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		// A browser without Sec-Fetch-Site: Origin is not the Host.
		{"origin only", map[string]string{"Origin": "http://evil.example"}},
		// A current browser on another site.
		{"cross-site", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}},
		// Another server on this machine (another port) is same-site, not same-origin.
		{"same-site", map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		// A sandboxed frame or a file: page.
		{"null origin", map[string]string{"Origin": "null"}},
	} {
		tc.header["Content-Type"] = "text/plain;charset=UTF-8"
		status, raw := rawRequest(t, b, http.MethodPost, "/rpc", "", tc.header, createBody)
		wantRefused(t, tc.name, status, raw, "cross-origin")
	}
	// A batch too.
	status, raw := rawRequest(t, b, http.MethodPost, "/rpc", "", map[string]string{"Origin": "http://evil.example"}, "["+createBody+"]")
	wantRefused(t, "batch", status, raw, "cross-origin")
	if n := taskCount(t, b); n != 0 {
		t.Errorf("%d tasks after refused calls, want 0", n)
	}
}

// TestSameOriginAndNonBrowserCallsAllowed: the dashboard's own calls
// (same origin, with or without Sec-Fetch-Site), a request the user typed
// (Sec-Fetch-Site none) and a client that is no browser (no Origin, as
// curl and the SDK send) all create their task.
func TestSameOriginAndNonBrowserCallsAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name   string
		header map[string]string
	}{
		{"same origin", map[string]string{"Origin": b.url, "Sec-Fetch-Site": "same-origin"}},
		{"same origin, old browser", map[string]string{"Origin": b.url}},
		{"typed by the user", map[string]string{"Sec-Fetch-Site": "none"}},
		{"curl", nil},
	}
	for _, tc := range cases {
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range tc.header {
			h[k] = v
		}
		status, raw := rawRequest(t, b, http.MethodPost, "/rpc", "", h, createBody)
		if m := rawObject(t, raw); status != http.StatusOK || m["result"] == nil {
			t.Errorf("%s: HTTP %d %s; want a created task", tc.name, status, clipText(string(raw)))
		}
	}
	if n := taskCount(t, b); n != len(cases) {
		t.Errorf("%d tasks, want %d", n, len(cases))
	}
}
