package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/ws"
)

// waitFor polls the page until cond (a JavaScript expression) is true; on
// failure it shows what state (another expression) read at the end.
func waitFor(t *testing.T, ctx context.Context, what, cond, state string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](cond)); err != nil {
		got := get(t, ctx, "read the page", chromedp.Evaluate[string](state))
		t.Fatalf("%s: %v; the page shows %q", what, err, got)
	}
}

// A page beyond the end of a list that shrank moves back to the last page
// that has rows, instead of showing "No tasks match" with tasks matching.
func TestDashboardPageShrinks(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ws.Options{})
	srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": "worker-1"}, nil)
	for i := range 30 {
		srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": fmt.Sprintf("task %d", i)}, nil)
	}
	ctx := browser(t, 1280, 900)
	const info = `document.getElementById('page-info').textContent`
	run(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#live.pill-on`),
		chromedp.SetValue(`#filters select[name="limit"]`, "10"),
		chromedp.SetValue(`#filters select[name="status"]`, "pending"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('filters').dispatchEvent(new Event('input'))`))
	waitFor(t, ctx, "see the first page", info+` === '1–10 of 30'`, info)
	run(t, ctx, "go to the last page", chromedp.Click(`#next`, chromedp.NodeVisible))
	waitFor(t, ctx, "see the second page", info+` === '11–20 of 30'`, info)
	run(t, ctx, "go to the last page", chromedp.Click(`#next`, chromedp.NodeVisible))
	waitFor(t, ctx, "see the last page", info+` === '21–30 of 30'`, info)

	// Fifteen tasks leave the pending list: the page moves to 11–15.
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1", "maxTasks": 10}, nil)
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1", "maxTasks": 5}, nil)
	waitFor(t, ctx, "see the last page of what is left",
		info+` === '11–15 of 15' && document.querySelectorAll('#tasks tbody tr[data-id]').length === 5`,
		info+` + ' / ' + document.querySelector('#tasks tbody').textContent`)
}

// Long strings with no break (a 128-character worker id, a 500-character
// word of task text, a long error) do not widen the tables or the detail,
// and no task string becomes markup.
func TestDashboardLongStrings(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ws.Options{})
	worker := strings.Repeat("w", 128)
	srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": worker, "queues": []string{"default", "emails", "reports"}}, nil)
	word := strings.Repeat("A", 500)
	var task taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": word,
		"metadata": map[string]any{"<img src=x>": "<img src=x onerror=alert(1)>", "long": word}}, &task)
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": `<img src=x onerror="document.title='pwned'">`}, nil)
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": worker}, nil)
	var lines []string
	for i := range 80 {
		lines = append(lines, fmt.Sprintf("line %d: <script>document.title='pwned'</script> %s", i, strings.Repeat("E", 200)))
	}
	srv.call(t, taskwire.MethodTaskComplete, map[string]any{"id": task.ID, "workerId": worker, "error": strings.Join(lines, "\n")}, nil)

	ctx := browser(t, 1280, 900)
	run(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#live.pill-on`),
		chromedp.WaitVisible(`#workers tbody tr`),
		chromedp.WaitVisible(fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID)))
	overflow := get(t, ctx, "measure the tables", chromedp.Evaluate[[]string](
		`['workers', 'tasks', 'queues'].filter((id) => { const el = document.getElementById(id); return el.scrollWidth > el.parentElement.clientWidth; })`))
	if len(overflow) > 0 {
		t.Errorf("tables wider than their panel: %q", overflow)
	}
	run(t, ctx, "open the failed task",
		chromedp.Click(fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID), chromedp.NodeVisible),
		chromedp.WaitVisible(`#detail-body .error-box`))
	box := get(t, ctx, "measure the error", chromedp.Evaluate[map[string]float64](
		`(() => { const b = document.querySelector('#detail-body .error-box'), d = document.getElementById('detail');
		  return {height: b.offsetHeight, viewport: innerHeight, drawerOverflow: d.scrollWidth - d.clientWidth}; })()`))
	if box["height"] > box["viewport"]/2 {
		t.Errorf("the error box is %v px high in a %v px window: a long error hides the rest of the detail", box["height"], box["viewport"])
	}
	if box["drawerOverflow"] > 0 {
		t.Errorf("the detail is %v px wider than the drawer", box["drawerOverflow"])
	}
	injected := get(t, ctx, "look for markup", chromedp.Evaluate[string](
		`document.querySelectorAll('main img, #detail img, main script, #detail script').length + ' ' + document.title`))
	if injected != "0 taskwire" {
		t.Errorf("task strings became markup: %s", injected)
	}
}

// A large result is shown cut to its first part, with its size and a
// way to fetch it whole, instead of being laid out entire in the page.
func TestDashboardLargeResult(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ws.Options{})
	srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": "worker-1"}, nil)
	var task taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "large result"}, &task)
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1"}, nil)
	rows := make([]string, 20000)
	for i := range rows {
		rows[i] = strings.Repeat("x", 50)
	}
	srv.call(t, taskwire.MethodTaskComplete, map[string]any{"id": task.ID, "workerId": "worker-1", "result": map[string]any{"rows": rows}}, nil)

	ctx := browser(t, 1280, 900)
	run(t, ctx, "open the task",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#live.pill-on`),
		chromedp.Click(fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID), chromedp.NodeVisible),
		chromedp.WaitVisible(`#detail-body .fields`))
	shown := get(t, ctx, "read the result", chromedp.Evaluate[map[string]any](
		`(() => { const pre = document.querySelector('#detail-body pre.result');
		  const note = document.querySelector('#detail-body .result-note');
		  return {length: pre ? pre.textContent.length : -1, note: note ? note.textContent : '',
		    download: !!document.querySelector('#detail-body button[data-action="download-result"]')}; })()`))
	if n := shown["length"].(float64); n < 0 || n > 70000 {
		t.Errorf("result shown with %v characters, want at most the first 64 KiB", n)
	}
	if note, _ := shown["note"].(string); !strings.Contains(note, "KiB") {
		t.Errorf("no note of the result's size: %q", note)
	}
	if shown["download"] != true {
		t.Error("no button to fetch the whole result")
	}
}

// withTokens turns auth on with a tokens file that holds tokens, each
// entry's name for its role (a worker bound to worker-1).
func withTokens(t *testing.T, tokens map[auth.Role]string) func(*server.Config) {
	t.Helper()
	var entries []map[string]string
	for role, token := range tokens {
		e := map[string]string{"name": string(role), "role": string(role), "token": token}
		if role == auth.RoleWorker {
			e["workerId"] = "worker-1"
		}
		entries = append(entries, e)
	}
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *server.Config) { c.Tokens = loaded }
}

// A token whose role may not follow the events (a worker's) gets the
// dashboard's refusal once, with the token dialog to enter another, and
// neither "reconnecting…" nor retries of the worker list; a producer token
// entered then goes live, with the worker list left to admins.
func TestDashboardRoleRefused(t *testing.T) {
	t.Parallel()
	const workerToken, producerToken = "worker-token-0123456789", "producer-token-0123456789"
	srv := startServer(t, ws.Options{}, withTokens(t, map[auth.Role]string{
		auth.RoleWorker: workerToken, auth.RoleProducer: producerToken}))
	ctx := browser(t, 1280, 900)
	const page = `['live', 'refusal', 'notice', 'workers'].map((id) => { const el = document.getElementById(id);
		return id + (el && !el.hidden ? ': ' + el.textContent : ' hidden'); }).join(' | ')`
	run(t, ctx, "open the dashboard with a worker token",
		chromedp.Navigate(srv.url+"/healthz"),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem('taskwire.token', '`+workerToken+`')`),
		chromedp.Navigate(srv.url+"/"))
	waitFor(t, ctx, "see the refusal",
		`document.getElementById('token-dialog').open && !document.getElementById('refusal').hidden`, page)
	for _, sel := range []string{"#refusal", "#token-error"} {
		if msg := get(t, ctx, "read "+sel, chromedp.Text(sel)); !strings.Contains(msg, "producer or admin token") {
			t.Errorf("%s reads %q, want it to say the dashboard needs a producer or admin token", sel, msg)
		}
	}
	waitFor(t, ctx, "see the worker list refused",
		`document.getElementById('workers').textContent.includes('admin token')`, page)
	if shown := get(t, ctx, "read the page", chromedp.Evaluate[string](page)); strings.Contains(shown, "connecting") ||
		strings.Contains(shown, "system.workers") {
		t.Errorf("after the refusal the page shows %q, want no reconnecting and no repeated refusal of system.workers", shown)
	}

	run(t, ctx, "give a producer token",
		chromedp.SendKeys(`#token-input`, producerToken),
		chromedp.Click(`#token-form button[value="ok"]`, chromedp.NodeVisible))
	waitFor(t, ctx, "go live with the producer token",
		`document.getElementById('live').classList.contains('pill-on') && document.getElementById('refusal').hidden &&
		document.getElementById('workers').textContent.includes('admin token')`, page)
	if shown := get(t, ctx, "read the page", chromedp.Evaluate[string](page)); strings.Contains(shown, "system.workers") {
		t.Errorf("with a producer token the page shows %q, want the worker list left to admins without a notice", shown)
	}
}
