package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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

// TestForeignHostRefused: on loopback with auth off, a request naming a
// host that is not loopback (a page whose name was rebound to 127.0.0.1,
// same-origin with itself) is refused on every endpoint, the dashboard
// and the WebSocket upgrade included, and changes nothing.
func TestForeignHostRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := createTask(t, b, nil)
	u, _ := url.Parse(b.url)
	evil := "evil.example:" + u.Port()
	for _, host := range []string{evil, "evil.example", "192.0.2.1:" + u.Port(), "localhost.evil.example", "0.0.0.0:" + u.Port()} {
		// The page is same-origin with itself: its Origin names host.
		page := map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}
		upgrade := map[string]string{"Origin": "http://" + host, "Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
		for _, tc := range []struct {
			method, path string
			header       map[string]string
			body         string
		}{
			{http.MethodPost, "/rpc", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"}, createBody},
			{http.MethodGet, "/events", page, ""},
			{http.MethodGet, "/ws", upgrade, ""},
			{http.MethodGet, "/", page, ""},
			{http.MethodGet, "/v1/tasks/" + task.ID + "/result", page, ""},
			{http.MethodGet, "/metrics", page, ""},
		} {
			status, raw := rawRequest(t, b, tc.method, tc.path, host, tc.header, tc.body)
			wantRefused(t, tc.method+" "+tc.path+" Host "+host, status, raw, "host "+host)
		}
	}
	if n := taskCount(t, b); n != 1 {
		t.Errorf("%d tasks after refused calls, want 1", n)
	}
}

// TestLoopbackHostsAllowed: every name of the loopback (localhost and its
// subdomains, 127.0.0.0/8, ::1) is served, with or without a port.
func TestLoopbackHostsAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := url.Parse(b.url)
	port := u.Port()
	hosts := []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "localhost", "127.0.0.1",
		"[::1]", "LocalHost:" + port, "localhost.:" + port, "dash.localhost:" + port, "127.1.2.3:" + port,
		"[::ffff:127.0.0.1]:" + port}
	for _, host := range hosts {
		status, raw := rawRequest(t, b, http.MethodPost, "/rpc", host,
			map[string]string{"Origin": "http://" + host, "Content-Type": "application/json"}, createBody)
		if m := rawObject(t, raw); status != http.StatusOK || m["result"] == nil {
			t.Errorf("POST /rpc Host %s: HTTP %d %s; want a created task", host, status, clipText(string(raw)))
		}
		if status, raw := rawRequest(t, b, http.MethodGet, "/", host, nil, ""); status != http.StatusOK {
			t.Errorf("GET / Host %s: HTTP %d %s; want the dashboard", host, status, clipText(string(raw)))
		}
		if status, _ := rawRequest(t, b, http.MethodGet, "/events", host, nil, ""); status != http.StatusOK {
			t.Errorf("GET /events Host %s: HTTP %d; want the stream", host, status)
		}
	}
	if n := taskCount(t, b); n != len(hosts) {
		t.Errorf("%d tasks, want %d", n, len(hosts))
	}
}

// TestAnyHostWithTokens: with auth on, the token guards the server, so
// a request naming any host is served when its token is good (a reverse
// proxy may pass its own Host on); a cross-origin call is still refused.
func TestAnyHostWithTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens(t, nil))
	bearer := "Bearer " + adminToken
	status, raw := rawRequest(t, b, http.MethodPost, "/rpc", "tasks.example.com",
		map[string]string{"Authorization": bearer, "Content-Type": "application/json"}, createBody)
	if m := rawObject(t, raw); status != http.StatusOK || m["result"] == nil {
		t.Errorf("POST /rpc Host tasks.example.com: HTTP %d %s; want a created task", status, clipText(string(raw)))
	}
	status, raw = rawRequest(t, b, http.MethodPost, "/rpc", "",
		map[string]string{"Authorization": bearer, "Origin": "http://evil.example", "Content-Type": "text/plain"}, createBody)
	wantRefused(t, "cross-origin with a token", status, raw, "cross-origin")
}

// TestServeChecksHostOnLoopbackOnly: Serve on a loopback address refuses
// a foreign Host; on every interface (auth off only as --insecure allows)
// it cannot know the names it is reached by, and serves any.
func TestServeChecksHostOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen string
		status int
	}{
		{"127.0.0.1:0", http.StatusForbidden},
		{":0", http.StatusOK},
	} {
		s, err := New(context.Background(), Config{DataDir: t.TempDir(), Version: "test",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		addrc := make(chan string, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, tc.listen, func(addr string) { addrc <- addr }) }()
		var addr string
		select {
		case addr = <-addrc:
		case err := <-done:
			t.Fatalf("Serve on %s: %v", tc.listen, err)
		}
		_, port, _ := net.SplitHostPort(addr)
		b := &bundle{url: "http://127.0.0.1:" + port}
		status, raw := rawRequest(t, b, http.MethodGet, "/healthz", "evil.example:"+port, nil, "")
		if status != tc.status {
			t.Errorf("Serve on %s, Host evil.example: HTTP %d %s, want %d", tc.listen, status, clipText(string(raw)), tc.status)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve on %s: %v", tc.listen, err)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"":                       true,
		"localhost":              true,
		"localhost:7700":         true,
		"LOCALHOST:7700":         true,
		"localhost.":             true,
		"a.b.localhost:7700":     true,
		"127.0.0.1":              true,
		"127.255.0.9:1":          true,
		"[::1]":                  true,
		"[::1]:7700":             true,
		"::1":                    true,
		"evil.example":           false,
		"evil.example:7700":      false,
		"localhost.evil.example": false,
		"evillocalhost":          false,
		"127.0.0.1.nip.io":       false,
		"0.0.0.0:7700":           false,
		"192.168.1.2:7700":       false,
		"[::]:7700":              false,
		"[fe80::1]:7700":         false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
