package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
)

// TestHostileBodies throws thousands of mutated and hostile bodies at a
// running server: truncated, deeply nested, invalid UTF-8, huge numbers,
// every param of every method (as rpc.discover lists them) given each
// wrong type, random byte edits and batches of all of these. No answer may
// be a 5xx or anything but JSON-RPC, none may take longer than its
// timeout; afterwards the server is healthy and every task it holds reads
// back whole and valid.
func TestHostileBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// token the bodies are sent with; "" runs the server without auth.
		token string
		kinds []string // answers each run must give many of
	}{
		{"auth off", "", []string{"result", "-32700", "-32600", "-32602"}},
		{"worker token", workerToken, []string{"result", "-32700", "-32600", "-32602", "-32002"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []option{func(c *Config) { c.MaxBodyBytes = 1 << 20 }}
			if tt.token != "" {
				opts = append(opts, withTokens(t, nil))
			}
			b := setup(t, opts...)
			b.cl.Token = adminToken
			hostileRun(t, b, tt.token, tt.kinds)
		})
	}
}

// hostileRun sends the hostile bodies with token and checks the answers
// and the state afterwards.
func hostileRun(t *testing.T, b *bundle, token string, kinds []string) {
	register(t, b, "w1")
	for range 5 {
		createTask(t, b, params{"metadata": params{"k": 1}})
	}
	claimOne(t, b, "w1")
	seeds := seedCalls(t, b)
	rng := rand.New(rand.NewPCG(1, 2))
	var bodies [][]byte
	for _, s := range seeds {
		bodies = append(bodies, wrongTypes(s)...)
	}
	n := 4000
	if testing.Short() {
		n = 800
	}
	for len(bodies) < n {
		bodies = append(bodies, mutate(rng, seeds))
	}
	t.Logf("%d bodies", len(bodies))

	client := &http.Client{Timeout: 15 * time.Second}
	work := make(chan []byte)
	var wg sync.WaitGroup
	var mu sync.Mutex
	tally := map[string]int{}
	for range 4 {
		wg.Go(func() {
			for body := range work {
				got := checkAnswer(t, client, b.url, token, body)
				mu.Lock()
				for _, k := range got {
					tally[k]++
				}
				mu.Unlock()
			}
		})
	}
	for _, body := range bodies {
		work <- body
	}
	close(work)
	wg.Wait()
	t.Logf("answers: %v", tally)
	// The bodies reached the methods, not only the parser.
	for _, kind := range kinds {
		if tally[kind] < 50 {
			t.Errorf("only %d answers of kind %s: the mutations do not exercise it", tally[kind], kind)
		}
	}

	if resp, _ := httpGet(t, b, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d after the hostile bodies", resp.StatusCode)
	}
	if h := call[taskwire.HealthResult](t, b, taskwire.MethodSystemHealth, params{}); h.Status != "ok" {
		t.Errorf("system.health: %+v", h)
	}
	checkAllTasks(t, b)
}

// seedCalls are valid calls of every method, on tasks and workers that
// exist.
func seedCalls(t *testing.T, b *bundle) []map[string]any {
	tasks := listTasks(t, b, params{"limit": 10}).Tasks
	id := tasks[0].ID
	calls := []map[string]any{
		{"method": "task.create", "params": params{"text": "x", "priority": 5, "metadata": params{"a": 1}, "queue": "q", "delayMs": 10, "maxAttempts": 2, "leaseMs": 5000, "idempotencyKey": "k"}},
		{"method": "task.claim", "params": params{"workerId": "w1", "maxTasks": 2, "queues": []string{"q", "default"}, "waitMs": 0}},
		{"method": "task.update", "params": params{"id": id, "updates": params{"text": "y", "status": "pending", "priority": 9, "metadata": params{"b": 2}}, "workerId": "w1", "attempt": 1}},
		{"method": "task.complete", "params": params{"id": id, "workerId": "w1", "result": params{"r": []int{1}}, "attempt": 1}},
		{"method": "task.complete", "params": params{"taskId": id, "error": "boom"}},
		{"method": "task.list", "params": params{"status": "pending", "assignedTo": "w1", "priority": 5, "queue": "q", "limit": 5, "offset": 1, "orderBy": "priority", "order": "asc"}},
		{"method": "task.get", "params": params{"id": id}},
		{"method": "task.assign", "params": params{"taskId": tasks[1].ID, "workerId": "w1"}},
		{"method": "task.unassign", "params": params{"taskId": tasks[2].ID}},
		{"method": "task.delete", "params": params{"id": tasks[3].ID}},
		{"method": "system.register", "params": params{"id": "w2", "roles": []string{"r"}, "queues": []string{"q"}, "metadata": params{"m": 1}}},
		{"method": "system.heartbeat", "params": params{"workerId": "w1"}},
		{"method": "system.unregister", "params": params{"id": "w2"}},
		{"method": "system.workers", "params": params{}},
		{"method": "system.health", "params": params{}},
		{"method": "system.metrics", "params": params{}},
		{"method": "rpc.discover"},
	}
	// Every param rpc.discover lists appears in some seed, so that each
	// gets every wrong type.
	var doc struct {
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name string `json:"name"`
			} `json:"params"`
		} `json:"methods"`
	}
	raw := call[json.RawMessage](t, b, taskwire.MethodDiscover, params{})
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Methods {
		for _, p := range m.Params {
			if !seedHas(calls, m.Name, p.Name) {
				calls = append(calls, map[string]any{"method": m.Name, "params": params{p.Name: "x"}})
			}
		}
	}
	for i, c := range calls {
		c["jsonrpc"], c["id"] = "2.0", i
	}
	return calls
}

func seedHas(calls []map[string]any, method, param string) bool {
	for _, c := range calls {
		if p, ok := c["params"].(params); ok && c["method"] == method {
			if _, ok := p[param]; ok {
				return true
			}
		}
	}
	return false
}

// wrongValues are what each param gets in turn.
var wrongValues = []any{nil, true, false, 0, -1, 1.5, 1e300, json.Number("1e999"),
	json.Number("123456789012345678901234567890"), json.Number("-0"), "", "x", strings.Repeat("é", 600),
	[]any{}, []any{1, "a"}, map[string]any{}, map[string]any{"k": nil}, json.RawMessage(nested(100))}

// wrongTypes returns seed with each of its params (and each field of
// updates) replaced in turn by each wrong value, and with the top-level
// members broken too.
func wrongTypes(seed map[string]any) [][]byte {
	var out [][]byte
	enc := func(v any) { b, _ := json.Marshal(v); out = append(out, b) }
	p, _ := seed["params"].(params)
	for name, v := range p {
		for _, w := range wrongValues {
			enc(with(seed, "params", with(p, name, w)))
			if u, ok := v.(params); ok {
				for field := range u {
					enc(with(seed, "params", with(p, name, with(u, field, w))))
				}
			}
		}
	}
	for _, member := range []string{"jsonrpc", "method", "id", "params"} {
		for _, w := range wrongValues {
			enc(with(seed, member, w))
		}
	}
	return out
}

// with returns a copy of m with key set to v.
func with(m map[string]any, key string, v any) map[string]any {
	c := make(map[string]any, len(m))
	for k, x := range m {
		c[k] = x
	}
	c[key] = v
	return c
}

// mutate makes one hostile body from the seeds.
func mutate(rng *rand.Rand, seeds []map[string]any) []byte {
	body, _ := json.Marshal(seeds[rng.IntN(len(seeds))])
	switch rng.IntN(8) {
	case 0: // truncated
		return body[:rng.IntN(len(body))]
	case 1: // random bytes changed
		for range 1 + rng.IntN(4) {
			body[rng.IntN(len(body))] = byte(rng.IntN(256))
		}
		return body
	case 2: // invalid UTF-8 inside a string
		i := bytes.IndexByte(body[1:], '"') + 2
		return append(append(append([]byte{}, body[:i]...), "\xff\xfe\xc0\x80"...), body[i:]...)
	case 3: // a value nested deeper and deeper
		return []byte(strings.Replace(string(body), `"params":{`, `"params":{"x":`+nested(rng.IntN(12000))+",", 1))
	case 4: // a huge number in place of a number
		return regexp.MustCompile(`:\d+`).ReplaceAll(body, []byte(":"+strings.Repeat("9", 1+rng.IntN(400))))
	case 5: // a batch of mutations
		parts := make([][]byte, 1+rng.IntN(5))
		for i := range parts {
			parts[i] = mutate(rng, seeds)
			if !json.Valid(parts[i]) {
				parts[i] = []byte("1")
			}
		}
		return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	case 6: // garbage
		junk := make([]byte, rng.IntN(200))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		return junk
	}
	// A member duplicated with another value.
	return bytes.Replace(body, []byte(`{`), []byte(`{"method":"task.delete","id":null,`), 1)
}

// checkAnswer posts body, checks that the answer is a JSON-RPC one and
// returns the kind of each response: "result" or the error code.
func checkAnswer(t *testing.T, client *http.Client, url, token string, body []byte) []string {
	req, err := http.NewRequest(http.MethodPost, url+"/rpc", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("body %q: %v (a hang or a dropped connection)", clipText(string(body)), err)
		return nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("body %q: reading the answer: %v", clipText(string(body)), err)
		return nil
	}
	switch resp.StatusCode {
	case http.StatusNoContent:
		if len(raw) != 0 {
			t.Errorf("204 with a body %q", clipText(string(raw)))
		}
		return []string{"204"}
	case http.StatusOK, http.StatusRequestEntityTooLarge:
	default:
		t.Errorf("body %q: HTTP %d %s", clipText(string(body)), resp.StatusCode, clipText(string(raw)))
		return nil
	}
	var one struct {
		Error *taskwire.Error `json:"error"`
	}
	var all []struct {
		Error *taskwire.Error `json:"error"`
	}
	if json.Unmarshal(raw, &one) != nil && json.Unmarshal(raw, &all) != nil || !utf8.Valid(raw) {
		t.Errorf("body %q: answer is not JSON-RPC: %q", clipText(string(body)), clipText(string(raw)))
		return nil
	}
	if raw[0] == '{' {
		all = append(all, one)
	}
	var kinds []string
	for _, r := range all {
		switch {
		case r.Error == nil:
			kinds = append(kinds, "result")
		case r.Error.Code == taskwire.CodeInternalError:
			t.Errorf("body %q: internal error %s", clipText(string(body)), clipText(string(raw)))
		default:
			kinds = append(kinds, fmt.Sprint(r.Error.Code))
		}
	}
	return kinds
}

// checkAllTasks reads every task back and checks it is whole and valid.
func checkAllTasks(t *testing.T, b *bundle) {
	t.Helper()
	queue := regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)
	for offset := 0; ; offset += 1000 {
		page := listTasks(t, b, params{"limit": 1000, "offset": offset})
		for _, l := range page.Tasks {
			task := getTask(t, b, l.ID)
			var problems []string
			check := func(ok bool, what string) {
				if !ok {
					problems = append(problems, what)
				}
			}
			n := utf8.RuneCountInString(task.Text)
			check(n >= 1 && n <= 500 && utf8.ValidString(task.Text), "text")
			check(queue.MatchString(task.Queue), "queue")
			check(task.Priority >= 0 && task.Priority <= 100, "priority")
			check(task.MaxAttempts >= 1 && task.MaxAttempts <= 100, "maxAttempts")
			check(len(task.Metadata) <= taskwire.MaxMetadataBytes, "metadata size")
			check(len(task.Metadata) == 0 || task.Metadata[0] == '{' || string(task.Metadata) == "null", "metadata object")
			switch task.Status {
			case taskwire.StatusPending:
				check(task.CompletedAt.IsZero(), "pending without completedAt")
			case taskwire.StatusInProgress:
				check(task.AssignedTo != "" && !task.LeaseExpiresAt.IsZero(), "in_progress with a worker and a lease")
			case taskwire.StatusCompleted, taskwire.StatusFailed:
				check(!task.CompletedAt.IsZero(), "final with completedAt")
			default:
				check(false, "status "+string(task.Status))
			}
			if len(problems) > 0 {
				t.Errorf("task %s is not valid (%v): %s", task.ID, problems, clipText(jsonText(task)))
			}
		}
		if !page.HasMore {
			return
		}
	}
}
