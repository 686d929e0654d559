package ws_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
)

// A request to GET /ws that is not a WebSocket upgrade the server takes
// (no upgrade, another protocol version, a page of another origin, another
// HTTP method) is answered with a JSON-RPC error object and id null, as
// all bad input is.
func TestRefusedUpgradeIsJSONRPCError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	with := func(kv ...string) map[string]string {
		h := map[string]string{}
		for k, v := range upgrade {
			h[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
		code         taskwire.Code
	}{
		{"no upgrade", http.MethodGet, nil, http.StatusUpgradeRequired, taskwire.CodeInvalidRequest},
		{"version 12", http.MethodGet, with("Sec-WebSocket-Version", "12"), http.StatusBadRequest, taskwire.CodeInvalidRequest},
		{"no key", http.MethodGet, with("Sec-WebSocket-Key", ""), http.StatusBadRequest, taskwire.CodeInvalidRequest},
		{"other origin", http.MethodGet, with("Origin", "https://elsewhere.example"), http.StatusForbidden, taskwire.CodeNotAllowed},
		{"POST", http.MethodPost, upgrade, http.StatusMethodNotAllowed, taskwire.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, b.url+"/ws", strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var got struct {
				JSONRPC string          `json:"jsonrpc"`
				Error   *taskwire.Error `json:"error"`
				ID      json.RawMessage `json:"id"`
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(body, &got) != nil || got.JSONRPC != "2.0" || string(got.ID) != "null" ||
				got.Error == nil || got.Error.Code != tc.code || got.Error.Message == "" {
				t.Errorf("HTTP %d %q %s; want HTTP %d, a JSON-RPC error %d with id null",
					resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
		})
	}
}
