package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// hostileText holds what a terminal acts on: ESC and BEL (an OSC that
// sets the window title, an SGR colour), the 8-bit CSI U+009B, DEL and a
// right-to-left override.
const hostileText = "evil \x1b]0;owned\a\x1b[31mred \u009b1m bold \x7f del \u202eevil"

// rawTerminalControls returns the runes of s a terminal would act on.
func rawTerminalControls(s string) []rune {
	var found []rune
	for _, r := range s {
		if r < 0x20 && r != '\n' || r >= 0x7f && r <= 0x9f || r == '\u202e' {
			found = append(found, r)
		}
	}
	return found
}

// TestCLIOutputTerminalSafe: the text of a task reaches the terminal
// with its control characters shown, never raw, in every output form,
// and the JSON forms still decode to the text as it was created.
func TestCLIOutputTerminalSafe(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	created := b.cli(t, "create", "--json", "--queue", "esc", hostileText).want(t, exitOK).stdout
	var task taskwire.Task
	if err := json.Unmarshal([]byte(created), &task); err != nil || task.Text != hostileText {
		t.Fatalf("create --json: %q, %v", created, err)
	}

	table := b.cli(t, "list", "--queue", "esc").want(t, exitOK).stdout
	if c := rawTerminalControls(table); len(c) > 0 || !strings.Contains(table, `\x1b[31mred`) {
		t.Errorf("list table holds raw controls %q:\n%s", c, table)
	}

	outputs := map[string]string{
		"create --json": created,
		"get":           b.cli(t, "get", task.ID).want(t, exitOK).stdout,
		"get --json":    b.cli(t, "get", "--json", task.ID).want(t, exitOK).stdout,
		"list --json":   b.cli(t, "list", "--json", "--queue", "esc").want(t, exitOK).stdout,
		"events --json": b.cli(t, "events", "--json", "--task-id", task.ID, "--after", "0", "--count", "1").want(t, exitOK).stdout,
	}
	for name, out := range outputs {
		if c := rawTerminalControls(out); len(c) > 0 {
			t.Errorf("%s holds raw controls %q:\n%s", name, c, out)
		}
		if !strings.Contains(out, `"text":`) && !strings.Contains(out, `"text": `) {
			t.Errorf("%s has no text:\n%s", name, out)
		}
	}
	var got taskwire.Task
	if err := json.Unmarshal([]byte(outputs["get"]), &got); err != nil || got.Text != hostileText {
		t.Errorf("get decodes to %q, %v", got.Text, err)
	}
	var ev taskwire.Event
	if err := json.Unmarshal([]byte(outputs["events --json"]), &ev); err != nil || !strings.Contains(string(ev.Payload), "owned") {
		t.Errorf("events --json decodes to %+v, %v", ev, err)
	}

	line := b.cli(t, "events", "--task-id", task.ID, "--after", "0", "--count", "1").want(t, exitOK).stdout
	if c := rawTerminalControls(line); len(c) > 0 || !strings.Contains(line, "task.created") {
		t.Errorf("events line holds raw controls %q:\n%s", c, line)
	}
}

// TestCLIErrorsTerminalSafe: an error message, which may quote what
// anyone sent (a task id, a queue name) or what a server says, reaches
// stderr with its control characters shown, never raw.
func TestCLIErrorsTerminalSafe(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	for _, args := range [][]string{
		{"get", hostileText},
		{"create", "--queue", hostileText, "text"},
		{"complete", hostileText, "--result", "1"},
	} {
		r := b.cli(t, args...)
		if r.code == exitOK {
			t.Fatalf("%s: exit 0, want an error", args[0])
		}
		if c := rawTerminalControls(r.stderr); len(c) > 0 || !strings.HasPrefix(r.stderr, "taskwire: ") {
			t.Errorf("%s: stderr holds raw controls %q:\n%s", args[0], c, r.stderr)
		}
	}
	var w strings.Builder
	if code := report(&w, exitError{code: exitServer, err: errors.New("server said: " + hostileText + "\nand more")}); code != exitServer {
		t.Errorf("report = exit %d, want %d", code, exitServer)
	}
	if want := "taskwire: server said: " + visible(hostileText) + "\nand more\n"; w.String() != want {
		t.Errorf("report wrote %q, want %q", w.String(), want)
	}
}

// TestCLICompleteEmptyOutcome: `complete ID --error "$msg"` with an empty
// message must not complete the task as a success, nor `--result ""`
// store null: both are bad command lines and change nothing.
func TestCLICompleteEmptyOutcome(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "empty", "x").want(t, exitOK).stdout)
	if _, err := b.c.Register(t.Context(), taskwire.RegisterParams{ID: "w1", Queues: []string{"empty"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.ClaimTasks(t.Context(), taskwire.ClaimParams{WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	b.cli(t, "complete", id, "--error", "").want(t, exitUsage)
	b.cli(t, "complete", id, "--result", "").want(t, exitUsage)
	b.cli(t, "complete", id, "--result", "1", "--error", "").want(t, exitUsage)
	if task, err := b.c.GetTask(t.Context(), id); err != nil || task.Status != taskwire.StatusInProgress {
		t.Fatalf("task after refused completions: %+v, %v", task, err)
	}
	b.cli(t, "complete", id).want(t, exitOK)
}

// TestCLICompleteResultFromStdin: `--result -` reads the result from
// stdin, so that results past the operating system's limit on one
// argument (128 KiB on Linux) can be given; stdin that is not JSON is a
// bad command line and changes nothing.
func TestCLICompleteResultFromStdin(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	var ids []string
	for range 2 {
		ids = append(ids, strings.TrimSpace(b.cli(t, "create", "--queue", "stdin", "x").want(t, exitOK).stdout))
	}
	if _, err := b.c.Register(t.Context(), taskwire.RegisterParams{ID: "w1", Queues: []string{"stdin"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.ClaimTasks(t.Context(), taskwire.ClaimParams{WorkerID: "w1", MaxTasks: client.Ptr(2)}); err != nil {
		t.Fatal(err)
	}
	complete := func(stdin string, args ...string) cliResult {
		var stdout, stderr bytes.Buffer
		cio := cliIO{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		r := cliResult{code: exitOK}
		if err := runComplete(t.Context(), cio, append([]string{"--server", b.url}, args...)); err != nil {
			r.code = exitServer
			var ee exitError
			if errors.As(err, &ee) {
				r.code = ee.code
			}
			stderr.WriteString(err.Error())
		}
		r.stdout, r.stderr = stdout.String(), stderr.String()
		return r
	}
	complete("not json", ids[0], "--result", "-").want(t, exitUsage)
	complete("", ids[0], "--result", "-").want(t, exitUsage)
	if task, err := b.c.GetTask(t.Context(), ids[0]); err != nil || task.Status != taskwire.StatusInProgress {
		t.Fatalf("task after refused completions: %+v, %v", task, err)
	}
	big := `{"blob":"` + strings.Repeat("x", 1<<20) + `"}`
	complete(big+"\n", ids[0], "--result", "-").want(t, exitOK)
	if task, err := b.c.GetTask(t.Context(), ids[0]); err != nil || compact(task.Result) != big {
		t.Fatalf("result of %d bytes, want %d (%v)", len(task.Result), len(big), err)
	}
	// A JSON string "-" still goes as itself.
	complete("", ids[1], "--result", `"-"`).want(t, exitOK)
}

// TestCLIBadServerURL: a --server or TASKWIRE_SERVER that is no HTTP URL
// is a bad command line (exit 2), not an unreachable server (exit 6)
// that a script would wait and retry for.
func TestCLIBadServerURL(t *testing.T) {
	t.Parallel()
	for _, server := range []string{"ftp://127.0.0.1:7700", "htp://127.0.0.1:7700", "http://", "http://a b"} {
		runTaskwire(t, "list", "--server", server).want(t, exitUsage)
		runTaskwire(t, "--server", server, "work", "--", "cat").want(t, exitUsage)
	}
	var stdout, stderr bytes.Buffer
	cio := cliIO{stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
		if k == "TASKWIRE_SERVER" {
			return "ftp://127.0.0.1:7700"
		}
		return ""
	}}
	var ee exitError
	if err := runGet(t.Context(), cio, []string{"t-x"}); !errors.As(err, &ee) || ee.code != exitUsage {
		t.Fatalf("TASKWIRE_SERVER=ftp://...: %v", err)
	}
	// A host and port alone is still http://.
	runTaskwire(t, "list", "--server", "127.0.0.1:1").want(t, exitUnavailable)
}
