package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

const createUsage = `Usage: taskwire create [flags] TEXT

Creates a task and prints its id (the whole task with --json).

Example:
  taskwire create --queue mail --priority 80 --metadata '{"to":"a@example.com"}' "send the welcome mail"
  id=$(taskwire create --delay 10m "remind me")
`

func runCreate(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "create", createUsage, true)
	queue := f.String("queue", "", "queue (default \"default\")")
	priority := f.Int("priority", taskwire.DefaultPriority, "priority "+intRange[taskwire.CreateParams]("priority")+", higher first")
	metadata := f.String("metadata", "", "JSON object kept with the task")
	delay := f.Duration("delay", 0, "not claimable before this delay, e.g. 30s or 10m")
	maxAttempts := f.Int("max-attempts", taskwire.DefaultMaxAttempts, "claims allowed before an expired lease fails it, "+intRange[taskwire.CreateParams]("maxAttempts"))
	key := f.String("idempotency-key", "", "a second create with this key returns the first task (and is retried safely)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if err := checkCreateFlags(*priority, *maxAttempts, *delay); err != nil {
		return err
	}
	p := taskwire.CreateParams{Text: pos[0], Queue: *queue, Priority: priority,
		MaxAttempts: maxAttempts, IdempotencyKey: *key}
	if *metadata != "" {
		if p.Metadata, err = jsonObject("metadata", *metadata); err != nil {
			return err
		}
	}
	if *delay > 0 {
		p.DelayMs = client.Ptr(delay.Milliseconds())
	}
	task, err := f.client().CreateTask(ctx, p)
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, task)
	}
	_, err = fmt.Fprintln(cio.stdout, task.ID)
	return err
}

// checkCreateFlags refuses the numbers of create that task.create would.
func checkCreateFlags(priority, maxAttempts int, delay time.Duration) error {
	if err := checkInt[taskwire.CreateParams]("priority", "priority", priority); err != nil {
		return err
	}
	if err := checkInt[taskwire.CreateParams]("max-attempts", "maxAttempts", maxAttempts); err != nil {
		return err
	}
	return checkMillis[taskwire.CreateParams]("delay", "delayMs", delay)
}

const getUsage = `Usage: taskwire get [flags] ID

Prints a task, result included, as indented JSON (one line with --json).
Exits 3 when there is no such task.

Example:
  taskwire get t-01M8JTWBXCV615QVQNHWQKGJVD
`

func runGet(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "get", getUsage, true)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	task, err := f.client().GetTask(ctx, pos[0])
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, task)
	}
	return printIndented(cio.stdout, task)
}

const listUsage = `Usage: taskwire list [flags]

Lists tasks, newest first, as a table (JSON {tasks, totalCount, hasMore}
with --json).

Example:
  taskwire list --status pending --queue mail --limit 20
  taskwire list --order-by priority --json | jq -r '.tasks[].id'
`

func runList(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "list", listUsage, true)
	status := f.String("status", "", "pending, in_progress, completed or failed")
	queue := f.String("queue", "", "only this queue")
	assigned := f.String("assigned-to", "", "only the tasks of this worker")
	limit := f.Int("limit", taskwire.DefaultListSize, "at most this many tasks ("+intRange[taskwire.ListParams]("limit")+")")
	offset := f.Int("offset", 0, "skip this many tasks")
	orderBy := f.String("order-by", "createdAt", "createdAt, updatedAt, priority, status, assignedTo or completedAt")
	asc := f.Bool("asc", false, "ascending order (default descending)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	st, err := statusOf(*status)
	if err != nil {
		return err
	}
	if err := checkListFlags(*limit, *offset, *orderBy); err != nil {
		return err
	}
	p := taskwire.ListParams{Status: st, Queue: *queue, AssignedTo: *assigned,
		Limit: limit, Offset: offset, OrderBy: *orderBy, Order: "desc"}
	if *asc {
		p.Order = "asc"
	}
	res, err := f.client().ListTasks(ctx, p)
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, res)
	}
	return printTasks(cio, res, *offset)
}

// checkListFlags refuses the paging and order of list that task.list
// would.
func checkListFlags(limit, offset int, orderBy string) error {
	if err := checkInt[taskwire.ListParams]("limit", "limit", limit); err != nil {
		return err
	}
	if err := checkInt[taskwire.ListParams]("offset", "offset", offset); err != nil {
		return err
	}
	return checkEnum[taskwire.ListParams]("order-by", "orderBy", orderBy)
}

// printTasks writes a page of tasks as an aligned table.
func printTasks(cio cliIO, res *taskwire.ListResult, offset int) error {
	tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tQUEUE\tPRI\tATTEMPT\tASSIGNED\tAGE\tTEXT")
	now := time.Now()
	for _, t := range res.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\t%s\n", t.ID, t.Status, t.Queue, t.Priority,
			t.Attempt, t.MaxAttempts, dash(t.AssignedTo), age(now.Sub(t.CreatedAt)), clip(t.Text, 50))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Tasks) == 0 {
		_, err := fmt.Fprintf(cio.stdout, "no tasks (%d in all)\n", res.TotalCount)
		return err
	}
	_, err := fmt.Fprintf(cio.stdout, "%d-%d of %d tasks\n", offset+1, offset+len(res.Tasks), res.TotalCount)
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age writes d roughly: 42s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// clip shortens s to n characters on one line, its terminal controls
// shown as escapes.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return visible(s)
}

const completeUsage = `Usage: taskwire complete [flags] ID

Completes a task with --result (any JSON value; --result - reads it from
stdin, for results too long for the command line), or fails it with
--error.
Exits 4 when the task's state does not allow it (not assigned, already
final, assigned to another worker), 3 when there is no such task.

Example:
  taskwire complete t-01M8JTWBXCV615QVQNHWQKGJVD --result '{"width":640}'
  taskwire complete t-01M8JTWBXCV615QVQNHWQKGJVD --error "source image missing" --worker-id w1
  taskwire complete t-01M8JTWBXCV615QVQNHWQKGJVD --result - < result.json
`

// resultArg is the value of --result: JSON, or "-" for the JSON on stdin.
func resultArg(cio cliIO, arg string) (json.RawMessage, error) {
	from := "--result"
	if arg == "-" {
		in, err := io.ReadAll(cio.stdin)
		if err != nil {
			return nil, fmt.Errorf("read the result from stdin: %w", err)
		}
		arg, from = string(in), "the result on stdin"
	}
	if !json.Valid([]byte(arg)) {
		return nil, usageError("%s must be JSON (quote a string: '\"done\"')", from)
	}
	return json.RawMessage(arg), nil
}

func runComplete(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "complete", completeUsage, true)
	result := f.String("result", "", "the result, any JSON value")
	errMsg := f.String("error", "", "fail the task with this message")
	worker := f.String("worker-id", "", "complete as this worker (the assigned one)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	p := taskwire.CompleteParams{ID: pos[0], WorkerID: *worker}
	set := f.given()
	switch {
	case set["result"] && set["error"]:
		return usageError("give --result or --error, not both")
	case set["error"] && *errMsg == "":
		// An empty message would complete the task instead of failing it.
		return usageError("--error must not be empty")
	case set["error"]:
		p.Error = errMsg
	case set["result"]:
		if p.Result, err = resultArg(cio, *result); err != nil {
			return err
		}
	}
	res, err := f.client().CompleteTask(ctx, p)
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, res)
	}
	_, err = fmt.Fprintf(cio.stdout, "%s %s\n", res.ID, res.Status)
	return err
}
