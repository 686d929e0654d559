package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// progress follows one phase of the bench: a bar on a terminal, one line
// at the end of the phase otherwise.
type progress interface {
	Add(n int)
	Finish()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// newProgress returns the progress of a phase of total tasks, written to w.
func newProgress(w io.Writer, phase string, total int) progress {
	if !isTerminal(w) {
		return &plainProgress{w: w, phase: phase, total: total, start: time.Now()}
	}
	return barProgress{progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-8s", phase)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("tasks"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (b barProgress) Add(n int) { _ = b.bar.Add(n) }
func (b barProgress) Finish()   { _ = b.bar.Finish() }

// plainProgress writes one line when its phase ends.
type plainProgress struct {
	w     io.Writer
	phase string
	total int
	done  atomic.Int64
	start time.Time
}

func (p *plainProgress) Add(n int) { p.done.Add(int64(n)) }

func (p *plainProgress) Finish() {
	fmt.Fprintf(p.w, "%s: %d/%d tasks in %s\n", p.phase, p.done.Load(), p.total, time.Since(p.start).Round(time.Millisecond))
}
