package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

const eventsUsage = `Usage: taskwire events [flags]

Follows the event stream (GET /events) and prints one line per event:
time, id, type, then the payload (the whole envelope as one JSON line with
--json). Runs until interrupted, or until --count events were printed; a
dropped connection resumes after the last event printed (or from where the
stream started, before the first), however long the server is away (a
server unreachable at the start exits 6). --after resumes from an event id
seen earlier, and replays the events the log holds after it. Where the
server's log no longer holds events the stream would have printed
(trimmed by its retention), one events.gap line stands for them, whatever
--types says; its payload names the ids missing.

Example:
  taskwire events --types task.completed,task.requeued
  taskwire events --task-id t-01M8JTWBXCV615QVQNHWQKGJVD --json
`

func runEvents(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "events", eventsUsage, true)
	types := f.String("types", "", "comma-separated event types, e.g. task.created,task.completed")
	taskID := f.String("task-id", "", "only the events of this task")
	after := f.String("after", "", "resume after this event id")
	count := f.Int("count", 0, "exit after this many events (0: follow until interrupted)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *count < 0 {
		return usageError("--count must not be negative")
	}
	p := client.EventsParams{TaskID: *taskID, After: *after}
	for t := range strings.SplitSeq(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			p.Types = append(p.Types, taskwire.EventType(t))
		}
	}
	n := 0
	errEnough := errors.New("enough events")
	err := follow(ctx, cio, f.client(), p, func(e taskwire.Event) error {
		if err := printEvent(cio, e, f.json); err != nil {
			return err
		}
		if n++; *count > 0 && n >= *count {
			return errEnough
		}
		return nil
	})
	switch {
	case errors.Is(err, errEnough):
		return nil
	case ctx.Err() != nil:
		return nil // interrupted: a normal end
	}
	return withExitCode(err)
}

// follow calls fn with each event of the stream until fn fails or ctx
// ends. A server that cannot be reached at the start is exit 6; once the
// stream is followed, a server away for longer than the client's retries
// is waited for, and the stream resumes after the last event fn saw, or,
// before the first, from the position the stream started at.
func follow(ctx context.Context, cio cliIO, c *client.Client, p client.EventsParams, fn func(taskwire.Event) error) error {
	if _, err := c.Health(ctx); err != nil {
		return withExitCode(err)
	}
	p.OnPosition = func(after string) { p.After = after }
	for {
		err := c.Events(ctx, p, fn)
		if ctx.Err() != nil || exitStatus(err) != exitUnavailable {
			return err
		}
		fmt.Fprintf(cio.stderr, "taskwire: %s; reconnecting\n", visibleLines(err.Error()))
	}
}

// printEvent writes one event, as a line of text or JSON.
func printEvent(cio cliIO, e taskwire.Event, asJSON bool) error {
	if asJSON {
		return printJSON(cio.stdout, e)
	}
	at := time.UnixMilli(e.Timestamp).UTC().Format(taskwire.TimeLayout)
	_, err := fmt.Fprintf(cio.stdout, "%s  %s  %-19s %s\n", at, visible(e.ID), visible(string(e.Type)), safeJSON(e.Payload))
	return err
}
