package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/internal/web"
)

// The page and its assets are served from the binary with their types and
// the headers that keep user text from running as code.
func TestAssets(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(web.Handler())
	defer hs.Close()
	for _, tc := range []struct {
		path, wantType, wantBody string
		status                   int
	}{
		{"/", "text/html", `<script type="module" src="/static/app.js">`, http.StatusOK},
		{"/static/app.js", "text/javascript", "task.list", http.StatusOK},
		{"/static/api.js", "text/javascript", "events.subscribe", http.StatusOK},
		{"/static/style.css", "text/css", "--completed", http.StatusOK},
		{"/static/missing.js", "", "", http.StatusNotFound},
		{"/nothing-here", "", "", http.StatusNotFound},
	} {
		resp, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != http.StatusOK {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, ct, tc.wantType)
		}
		if !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("%s: body lacks %q", tc.path, tc.wantBody)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
	}
}

// No script builds HTML from strings: task text is user input.
func TestNoHTMLFromStrings(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(web.Handler())
	defer hs.Close()
	for _, f := range []string{"app.js", "api.js", "dom.js", "chart.js"} {
		resp, err := http.Get(hs.URL + "/static/" + f)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}
