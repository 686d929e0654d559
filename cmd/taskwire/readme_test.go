package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// walkthroughHeading names the README section whose sh block
// TestREADMEWalkthrough runs.
const walkthroughHeading = "## A walk through with curl"

// walkStep is one `rpc '...'` line of the README's walkthrough and the
// `# => ...` line that shows the shape of its answer.
type walkStep struct {
	body, want string
}

// walkthrough is what the README's walkthrough block does: its rpc steps
// in order, then a GET of one task's result.
type walkthrough struct {
	steps      []walkStep
	resultPath string // of the closing curl, with the placeholder id
}

var (
	rpcStep     = regexp.MustCompile(`^rpc '(.*)'$`)
	resultGET   = regexp.MustCompile(`^curl -s ` + regexp.QuoteMeta(defaultServer) + `(/\S+)$`)
	placeholder = regexp.MustCompile(`t-01M8[^"/]*`)
	// shownKey and shownPair read a `# =>` line, which is JSON with
	// elisions: every "key": it shows, and the "key":value pairs whose
	// value is a string, number, boolean or null.
	shownKey  = regexp.MustCompile(`"(\w+)":`)
	shownPair = regexp.MustCompile(`"(\w+)":("[^"]*"|-?\d+(?:\.\d+)?|true|false|null)`)
)

// TestREADMEWalkthrough runs the README's curl walkthrough against a real
// server started with serve's defaults: each call must succeed and answer
// every key the README shows, with the values it shows (ids, timestamps
// and elided values aside), and the closing GET must return the result
// the walkthrough completed the task with.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	t.Parallel()
	w := readWalkthrough(t, "../../README.md")
	srv := startChild(t, "--data", t.TempDir())

	var id string
	var sent json.RawMessage // the result the walkthrough completes the task with
	withID := func(s string) string {
		if placeholder.MatchString(s) && id == "" {
			t.Fatalf("%s uses a task id before a task.create step returned one", s)
		}
		return placeholder.ReplaceAllLiteralString(s, id)
	}
	for i, step := range w.steps {
		var call struct {
			Method string
			Params struct{ Result json.RawMessage }
		}
		body := withID(step.body)
		if err := json.Unmarshal([]byte(body), &call); err != nil {
			t.Fatalf("step %d: the README's request is not JSON: %v\n%s", i+1, err, body)
		}
		answer := postRPC(t, srv.URL, body)
		var resp rpctest.Response
		if err := json.Unmarshal(answer, &resp); err != nil {
			t.Fatalf("step %d (%s): the answer is not a JSON-RPC response: %v\n%s", i+1, call.Method, err, answer)
		}
		if resp.Error != nil || resp.Result == nil {
			t.Fatalf("step %d (%s): the server answered no result:\n%s", i+1, call.Method, answer)
		}
		switch call.Method {
		case taskwire.MethodTaskCreate:
			var task taskwire.Task
			if err := json.Unmarshal(resp.Result, &task); err != nil || task.ID == "" {
				t.Fatalf("step %d: task.create answered no task id: %v\n%s", i+1, err, answer)
			}
			id = task.ID
		case taskwire.MethodTaskComplete:
			sent = call.Params.Result
		}
		checkShown(t, i+1, call.Method, withID(step.want), answer)
	}

	if sent == nil {
		t.Fatal("the walkthrough completes no task with a result")
	}
	got := getOK(t, srv.URL+withID(w.resultPath))
	if !jsonEqual(got, sent) {
		t.Errorf("GET %s = %s, want the result the walkthrough completed the task with, %s", w.resultPath, got, sent)
	}
}

// readWalkthrough reads the walkthrough block of the README at path,
// failing the test when the section, the block or any of its parts is not
// where the test expects it, so that a rewritten README cannot leave the
// test checking nothing.
func readWalkthrough(t *testing.T, path string) walkthrough {
	t.Helper()
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+walkthroughHeading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", path, walkthroughHeading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, closed := strings.Cut(block, "\n```")
	if !ok || !closed {
		t.Fatalf("section %q of %s has no ```sh block", walkthroughHeading, path)
	}

	var w walkthrough
	rpcDefined := false
	for n, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "rpc() {"):
			rpcDefined = strings.Contains(line, "curl -s "+defaultServer+`/rpc -d "$1"`)
		case strings.HasPrefix(line, "rpc "):
			m := rpcStep.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("walkthrough line %d is not rpc '{...}': %s", n+1, line)
			}
			if len(w.steps) > 0 && w.steps[len(w.steps)-1].want == "" {
				t.Fatalf("walkthrough line %d: the rpc step before it has no # => line", n+1)
			}
			w.steps = append(w.steps, walkStep{body: m[1]})
		case strings.HasPrefix(line, "# =>"):
			if len(w.steps) == 0 || w.steps[len(w.steps)-1].want != "" {
				t.Fatalf("walkthrough line %d: a # => line that follows no rpc step", n+1)
			}
			w.steps[len(w.steps)-1].want = strings.TrimSpace(strings.TrimPrefix(line, "# =>"))
		case strings.HasPrefix(line, "curl "):
			m := resultGET.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("walkthrough line %d is not curl -s %s/...: %s", n+1, defaultServer, line)
			}
			w.resultPath = m[1]
		}
	}
	switch {
	case !rpcDefined:
		t.Fatalf("the walkthrough does not define rpc() as a curl of %s/rpc", defaultServer)
	case len(w.steps) < 5:
		t.Fatalf("the walkthrough has %d rpc steps, want at least the 5 it has had", len(w.steps))
	case w.steps[len(w.steps)-1].want == "":
		t.Fatal("the walkthrough's last rpc step has no # => line")
	case w.resultPath == "":
		t.Fatal("the walkthrough does not end with a curl of a task's result")
	}
	return w
}

// checkShown checks answer against the README's `# =>` line shown for step
// n: every key shown occurs in the answer, and every value shown (ids
// already replaced; timestamps and elisions aside) is the value of that
// key somewhere in the answer.
func checkShown(t *testing.T, n int, method, shown string, answer []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(answer, &v); err != nil {
		t.Fatalf("step %d (%s): %v", n, method, err)
	}
	keys, pairs := map[string]bool{}, map[string]bool{}
	collectPairs(v, keys, pairs)
	for _, m := range shownKey.FindAllStringSubmatch(shown, -1) {
		if !keys[m[1]] {
			t.Errorf("step %d (%s): the README shows key %q, the server's answer has none:\n%s", n, method, m[1], answer)
		}
	}
	for _, m := range shownPair.FindAllStringSubmatch(shown, -1) {
		var value any
		if err := json.Unmarshal([]byte(m[2]), &value); err != nil {
			t.Fatalf("step %d (%s): the README's value %s of %q: %v", n, method, m[2], m[1], err)
		}
		if s, ok := value.(string); ok && (strings.Contains(s, "...") || isTimestamp(s)) {
			continue
		}
		if !pairs[pairKey(m[1], value)] {
			t.Errorf("step %d (%s): the README shows \"%s\":%s, the server answered:\n%s", n, method, m[1], m[2], answer)
		}
	}
}

// collectPairs records every object key in v, and every key with a
// scalar value as pairKey(key, value).
func collectPairs(v any, keys, pairs map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			keys[k] = true
			switch x.(type) {
			case map[string]any, []any:
				collectPairs(x, keys, pairs)
			default:
				pairs[pairKey(k, x)] = true
			}
		}
	case []any:
		for _, x := range v {
			collectPairs(x, keys, pairs)
		}
	}
}

// pairKey is key and a decoded scalar value as one comparable string.
func pairKey(key string, value any) string {
	b, _ := json.Marshal(value)
	return key + ":" + string(b)
}

func isTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// postRPC posts body to the server's /rpc as `curl -d` does, form content
// type included, and returns the answer of HTTP status 200.
func postRPC(t *testing.T, baseURL, body string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+"/rpc", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doOK(t, req)
}

// getOK returns the body of a GET of url that answers HTTP status 200.
func getOK(t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return doOK(t, req)
}

func doOK(t *testing.T, req *http.Request) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d\n%s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
