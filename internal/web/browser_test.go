package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/servertest"
	"github.com/taskwire/taskwire/internal/ws"
)

// ScreenshotEnv names a directory: when set, the browser test also fills
// the server with a few minutes of history and saves dashboard.png
// (1280 px wide) and dashboard-phone.png (390 px) there.
const ScreenshotEnv = "TASKWIRE_SCREENSHOTS"

// browserWait bounds each wait on the page: a failure guard, not a measure.
const browserWait = 30 * time.Second

// chromium returns the path of the Chromium binary; without one the test
// skips, or fails where services are required.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "SKIPPING the dashboard browser test: no chromium on PATH (apt-get install chromium)"
	if os.Getenv("CI") == "true" || os.Getenv("TASKWIRE_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// live is a server on a loopback port, with a clock that may run behind.
type live struct {
	url    string
	cl     *rpctest.Client
	behind atomic.Int64 // how far the server's clock runs behind, in ns
}

// startServer serves on a loopback port; ws sets the WebSocket options,
// and each option changes the rest of the configuration.
func startServer(t *testing.T, ws ws.Options, opts ...func(*server.Config)) *live {
	t.Helper()
	l := &live{}
	cfg := servertest.Config(t)
	cfg.Now = func() time.Time { return time.Now().Add(-time.Duration(l.behind.Load())) }
	cfg.WebSocket = ws
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, "127.0.0.1:0", func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		l.url = "http://" + a
	case err := <-done:
		t.Fatal(err)
	}
	l.cl = rpctest.New(l.url)
	return l
}

func (l *live) call(t *testing.T, method string, params, out any) {
	t.Helper()
	if err := l.cl.Call(context.Background(), method, params, out); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

// browser opens a headless Chromium of its own (fresh profile) and returns
// a context to drive one tab of it.
func browser(t *testing.T, width, height int64) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(width), int(height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs steps on the page within browserWait.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(steps...))
}

// get runs action on the page within browserWait and returns its value.
func get[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// The dashboard shows a task created after it opened, and then its
// completion, without a reload.
func TestDashboardLive(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ws.Options{})
	srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": "worker-1"}, nil)
	for i := range 3 {
		srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "existing task " + strconv.Itoa(i)}, nil)
	}
	// A task done before the page opens: its history comes from the log.
	var done taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "done before the page opened", "priority": 99}, &done)
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1"}, nil)
	srv.call(t, taskwire.MethodTaskComplete, map[string]any{"id": done.ID, "workerId": "worker-1", "result": "ok"}, nil)
	ctx := browser(t, 1280, 900)
	run(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#live.pill-on`),
		chromedp.WaitVisible(`#tasks tbody tr[data-id]`))
	get(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.sameDocument = true`))

	// Its detail shows its whole history, newest first.
	run(t, ctx, "open the task done before",
		chromedp.Click(fmt.Sprintf(`#tasks tr[data-id="%s"]`, done.ID), chromedp.NodeVisible),
		chromedp.WaitVisible(`#detail-body .history`))
	steps := historySteps(t, ctx)
	wantSteps := []string{"task.completed completed", "task.claimed by worker-1", "task.created by"}
	if len(steps) != len(wantSteps) {
		t.Errorf("history of a task done before the page opened: %q, want %d steps like %q", steps, len(wantSteps), wantSteps)
	} else {
		for i, want := range wantSteps {
			if !strings.HasPrefix(steps[i], want) {
				t.Errorf("history step %d = %q, want it to start with %q (history %q)", i, steps[i], want, steps)
			}
		}
	}
	run(t, ctx, "close the task", chromedp.Click(`#detail-close`, chromedp.NodeVisible), chromedp.WaitNotVisible(`#detail`))

	var task taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "<b>new</b> task from the test", "priority": 90}, &task)
	row := fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID)
	run(t, ctx, "see the new task", chromedp.WaitVisible(row+`[data-status="pending"]`))
	text := get(t, ctx, "read its text", chromedp.Text(row+` .text-cell`))
	if text != "<b>new</b> task from the test" {
		t.Errorf("task text shown as %q, want the text verbatim", text)
	}

	var claim taskwire.ClaimResult
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1"}, &claim)
	if claim.TaskID != task.ID {
		t.Fatalf("claimed %s, want %s", claim.TaskID, task.ID)
	}
	srv.call(t, taskwire.MethodTaskComplete, map[string]any{"id": task.ID, "workerId": "worker-1", "result": "done"}, nil)
	run(t, ctx, "see the completion", chromedp.WaitVisible(row+`[data-status="completed"]`))
	if !get(t, ctx, "check for a reload", chromedp.Evaluate[bool](`window.sameDocument === true`)) {
		t.Error("the page reloaded")
	}

	// The task's detail opens from its row.
	run(t, ctx, "open the task",
		chromedp.Click(row, chromedp.NodeVisible),
		chromedp.WaitVisible(`#detail-body .fields`))
	detail := get(t, ctx, "read the detail", chromedp.Text(`#detail-body`))
	for _, want := range []string{task.ID, "worker-1", "task.completed"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail does not show %q:\n%s", want, detail)
		}
	}

	// Events both fetched from the log and received live show once.
	if steps = historySteps(t, ctx); len(steps) != 3 {
		t.Errorf("history of the new task: %q, want created, claimed, completed once each", steps)
	}

	// Requeue from the detail: the row goes back to pending, live, and the
	// history gains the requeue's two events (in either order) on top.
	run(t, ctx, "requeue the task",
		chromedp.Click(`#detail-body button[data-action="requeue"]`, chromedp.NodeVisible),
		chromedp.WaitVisible(row+`[data-status="pending"]`),
		chromedp.WaitVisible(`#detail-body .history li:nth-child(5)`))
	steps = historySteps(t, ctx)
	if len(steps) != 5 || !strings.HasPrefix(steps[2], "task.completed") ||
		!strings.Contains(steps[0]+steps[1], "task.updated") || !strings.Contains(steps[0]+steps[1], "task.requeued") {
		t.Errorf("history after the requeue: %q, want task.updated and task.requeued on top of the three steps", steps)
	}

	if dir := os.Getenv(ScreenshotEnv); dir != "" {
		screenshots(t, srv, dir)
	}
}

// historySteps reads the history of the open task's detail, newest first,
// each step as its type and description.
func historySteps(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return get(t, ctx, "read the history", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#detail-body .history li')].map((li) => li.children[1].textContent + ' ' + li.children[2].textContent)`))
}

// When the server wants a token, the dashboard asks for one, keeps it,
// and authenticates its WebSocket with it.
func TestDashboardAsksForToken(t *testing.T) {
	t.Parallel()
	const token = "dashboard-token"
	srv := startServer(t, ws.Options{Authenticate: func(ctx context.Context, got string) (context.Context, error) {
		if got != token {
			return nil, errors.New("unknown token")
		}
		return ctx, nil
	}})
	ctx := browser(t, 1280, 900)
	run(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#token-dialog[open]`))
	if shown := get(t, ctx, "read the first dialog", chromedp.Evaluate[bool](`!document.getElementById('token-error').hidden`)); shown {
		t.Error("the first token dialog says a token was refused")
	}
	run(t, ctx, "give a wrong token",
		chromedp.SendKeys(`#token-input`, "wrong"),
		chromedp.Click(`#token-form button[value="ok"]`, chromedp.NodeVisible),
		// A bad token is refused: the dialog comes back and says so.
		chromedp.WaitVisible(`#token-dialog[open] #token-error`))
	if msg := get(t, ctx, "read the refusal", chromedp.Text(`#token-error`)); !strings.Contains(msg, "refused") {
		t.Errorf("refusal reads %q, want it to say the token was refused", msg)
	}
	run(t, ctx, "give the right token",
		chromedp.SetValue(`#token-input`, token),
		chromedp.Click(`#token-form button[value="ok"]`, chromedp.NodeVisible),
		chromedp.WaitVisible(`#live.pill-on`))
	if kept := get(t, ctx, "read the stored token", chromedp.Evaluate[string](`localStorage.getItem('taskwire.token')`)); kept != token {
		t.Errorf("stored token %q, want %q", kept, token)
	}
	var task taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "after the token"}, &task)
	run(t, ctx, "see the new task", chromedp.WaitVisible(fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID)))
}

// A dashboard whose connection drops before its first event resumes from
// the position its subscription started at: the events of the outage
// reach it, and the open task's history shows them.
func TestDashboardResumesBeforeFirstEvent(t *testing.T) {
	t.Parallel()
	srv, g := startGated(t)
	srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": "worker-1"}, nil)
	var task taskwire.Task
	srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": "watched across an outage"}, &task)
	ctx := browser(t, 1280, 900)
	run(t, ctx, "open the task",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(`#live.pill-on`),
		chromedp.Click(fmt.Sprintf(`#tasks tr[data-id="%s"]`, task.ID), chromedp.NodeVisible),
		// The history fetched from the log: the creation alone.
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#detail-body .history li .by')].map((e) => e.textContent).join() === 'by 127.0.0.1'`))

	g.shut()
	run(t, ctx, "see the outage", chromedp.WaitVisible(`#live.pill-off`))
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1"}, nil)
	g.open()
	run(t, ctx, "see the reconnect", chromedp.WaitVisible(`#live.pill-on`))
	srv.call(t, taskwire.MethodTaskComplete, map[string]any{"id": task.ID, "workerId": "worker-1", "result": "ok"}, nil)
	run(t, ctx, "see the completion", chromedp.Poll[chromedp.Void](
		`document.querySelector('#detail-body .history li:first-child')?.textContent.includes('task.completed')`))
	steps := historySteps(t, ctx)
	wantSteps := []string{"task.completed completed", "task.claimed by worker-1", "task.created by"}
	if len(steps) != len(wantSteps) {
		t.Fatalf("history after the outage: %q, want %d steps like %q", steps, len(wantSteps), wantSteps)
	}
	for i, want := range wantSteps {
		if !strings.HasPrefix(steps[i], want) {
			t.Errorf("history step %d = %q, want it to start with %q (history %q)", i, steps[i], want, steps)
		}
	}
}

// startGated serves on a loopback port with a gate in front of GET /ws.
func startGated(t *testing.T) (*live, *gate) {
	t.Helper()
	srv, err := server.New(context.Background(), servertest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{next: srv.Handler()}
	hs := httptest.NewUnstartedServer(g)
	hs.Config.ConnContext = withConn
	hs.Start()
	t.Cleanup(func() {
		srv.Drain()
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &live{url: hs.URL, cl: rpctest.New(hs.URL)}, g
}

type connKey struct{}

// withConn keeps a request's connection in its context, for the gate.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// gate stands in front of a server's GET /ws as a network that fails:
// shut, it has dropped the WebSocket connections made through it and
// refuses new ones (HTTP 503) until it is opened again.
type gate struct {
	next http.Handler

	mu     sync.Mutex
	closed bool
	conns  []net.Conn
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" {
		g.mu.Lock()
		closed := g.closed
		if !closed {
			g.conns = append(g.conns, r.Context().Value(connKey{}).(net.Conn))
		}
		g.mu.Unlock()
		if closed {
			http.Error(w, "network down", http.StatusServiceUnavailable)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// shut drops the WebSocket connections and refuses new ones.
func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

// open lets WebSocket connections through again.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
}

// screenshots fills the server with ten minutes of history, then saves the
// dashboard at desktop and phone width.
func screenshots(t *testing.T, srv *live, dir string) {
	history(t, srv)
	for _, v := range []struct {
		file          string
		width, height int64
	}{{"dashboard.png", 1280, 1400}, {"dashboard-phone.png", 390, 1600}} {
		for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
			srv.call(t, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": w}, nil) // still online: a heartbeat keeps its tasks
		}
		ctx := browser(t, v.width, v.height)
		run(t, ctx, "open for "+v.file,
			chromedp.Navigate(srv.url+"/"),
			chromedp.WaitVisible(`#live.pill-on`),
			chromedp.WaitVisible(`#workers tbody tr`),
			chromedp.Sleep(2*time.Second)) // let throttled refreshes settle
		png := get(t, ctx, "screenshot "+v.file, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, v.file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// history creates, claims and completes tasks with the server's clock
// walking from ten minutes ago to now, across queues and workers, and
// leaves some work pending and in progress.
func history(t *testing.T, srv *live) {
	queues := []string{"default", "emails", "reports"}
	workers := []string{"worker-1", "worker-2", "worker-3"}
	texts := []string{"Resize product image", "Send welcome email", "Build monthly report", "Sync CRM contacts", "Transcode video clip"}
	n := 0
	for step := 58; step >= 0; step-- {
		srv.behind.Store(int64(time.Duration(step) * 10 * time.Second))
		for i, w := range workers {
			srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": w, "queues": []string{queues[i]}}, nil)
		}
		burst := 2 + (step*7)%5
		for range burst {
			q := queues[n%len(queues)]
			srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": texts[n%len(texts)] + " #" + strconv.Itoa(n),
				"queue": q, "priority": 30 + (n*17)%70, "metadata": map[string]any{"customer": "c-" + strconv.Itoa(n%13)}}, nil)
			n++
		}
		for i, w := range workers {
			var claim taskwire.ClaimResult
			srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": w, "maxTasks": 2 + i}, &claim)
			for j, task := range claim.Tasks {
				p := map[string]any{"id": task.ID, "workerId": w, "result": map[string]any{"ok": true}}
				if (n+j)%9 == 0 {
					p = map[string]any{"id": task.ID, "workerId": w, "error": "upstream timed out"}
				}
				srv.call(t, taskwire.MethodTaskComplete, p, nil)
			}
		}
	}
	// A backlog waiting in two queues.
	for i := range 14 {
		srv.behind.Store(int64(time.Duration(240-i*15) * time.Second))
		srv.call(t, taskwire.MethodTaskCreate, map[string]any{"text": texts[i%len(texts)] + " (backlog) #" + strconv.Itoa(n+i),
			"queue": queues[1+i%2], "priority": 50}, nil)
	}
	srv.behind.Store(0)
	for i, w := range workers {
		srv.call(t, taskwire.MethodSystemRegister, map[string]any{"id": w, "queues": []string{queues[i]}}, nil)
	}
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-1", "maxTasks": 2}, nil)
	srv.call(t, taskwire.MethodTaskClaim, map[string]any{"workerId": "worker-2", "maxTasks": 1}, nil)
}
