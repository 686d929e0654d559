package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/taskwire/taskwire"
)

// TestCLIWorkCommandOwnProcessGroup: each command runs in a process group
// of its own, so the SIGINT a terminal sends to the foreground group on
// Ctrl-C reaches only taskwire, which lets the command finish within
// --grace instead of failing its task with "signal: interrupt".
func TestCLIWorkCommandOwnProcessGroup(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "pgrp", "which group").want(t, exitOK).stdout)
	b.cli(t, "work", "--queue", "pgrp", "--exit-when-idle", "--", "sh", "-c", "cut -d' ' -f5 /proc/$$/stat").want(t, exitOK)
	task, err := b.c.GetTask(t.Context(), id)
	if err != nil || task.Status != taskwire.StatusCompleted {
		t.Fatalf("task: %+v, %v", task, err)
	}
	if ours := strconv.Itoa(syscall.Getpgrp()); string(task.Result) == ours {
		t.Fatalf("the command ran in taskwire's process group %s", ours)
	}
}
