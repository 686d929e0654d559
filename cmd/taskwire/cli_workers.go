package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

const workersUsage = `Usage: taskwire workers [flags]

Lists the registered workers: status, queues, when last seen and their
in-progress tasks.

Example:
  taskwire workers
  taskwire workers --json | jq '.workers[] | select(.status == "online") | .id'
`

func runWorkers(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "workers", workersUsage, true)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	res, err := f.client().Workers(ctx)
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, res)
	}
	if len(res.Workers) == 0 {
		_, err := fmt.Fprintln(cio.stdout, "no workers")
		return err
	}
	tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tQUEUES\tLAST SEEN\tTASKS")
	now := time.Now()
	for _, w := range res.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", w.ID, w.Status, dash(strings.Join(w.Queues, ",")),
			age(now.Sub(w.LastSeen)), dash(strings.Join(w.Tasks, ",")))
	}
	return tw.Flush()
}
