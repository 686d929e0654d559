package main

import (
	"os"
	"path/filepath"
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

// TestCLIWorkKillsWholeGroup: a command stopped by --timeout whose
// processes ignore SIGTERM is killed with all of its process group, so
// no child of it is left running.
func TestCLIWorkKillsWholeGroup(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	b.cli(t, "create", "--queue", "stubborn", "ignore TERM").want(t, exitOK)
	script := `trap '' TERM; sleep 120 & echo $! > "$1"; wait`
	b.cli(t, "work", "--queue", "stubborn", "--timeout", "100ms", "--exit-when-idle", "--",
		"sh", "-c", script, "sh", pidFile).want(t, exitOK)
	wantGone(t, pidFile)
}

// wantGone fails the test unless the process whose pid is in pidFile has
// ended: gone, or a zombie waiting for its new parent to reap it.
func wantGone(t *testing.T, pidFile string) {
	t.Helper()
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(raw))
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err == nil && !strings.Contains(string(stat), ") Z ") {
		_ = syscall.Kill(atoi(t, pid), syscall.SIGKILL)
		t.Fatalf("the command's child %s still runs: %s", pid, stat)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCLIWorkCommandLeavesAChild: a command that exits 0 completes its
// task with its stdout even when a child it left running still holds
// stdout open, and the child is ended with the command.
func TestCLIWorkCommandLeavesAChild(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "leaver", "leave a child").want(t, exitOK).stdout)
	script := `echo hi; sleep 120 & echo $! > "$1"; exit 0`
	b.cli(t, "work", "--queue", "leaver", "--exit-when-idle", "--", "sh", "-c", script, "sh", pidFile).want(t, exitOK)
	task, err := b.c.GetTask(t.Context(), id)
	if err != nil || task.Status != taskwire.StatusCompleted || string(task.Result) != `"hi"` {
		t.Fatalf("task: %+v, %v", task, err)
	}
	wantGone(t, pidFile)
}

// TestCLIWorkCommandLeavesAChildOnStdin: the same when the child holds
// stdin, with a task larger than a pipe holds, so that the input is still
// being written when the command exits.
func TestCLIWorkCommandLeavesAChildOnStdin(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "stdin-leaver", "--metadata",
		`{"pad":"`+strings.Repeat("x", 65_500)+`"}`, "hold stdin").want(t, exitOK).stdout)
	script := `echo hi; exec 3<&0; sleep 120 <&3 & echo $! > "$1"; exit 0`
	b.cli(t, "work", "--queue", "stdin-leaver", "--exit-when-idle", "--", "sh", "-c", script, "sh", pidFile).want(t, exitOK)
	task, err := b.c.GetTask(t.Context(), id)
	if err != nil || task.Status != taskwire.StatusCompleted || string(task.Result) != `"hi"` {
		t.Fatalf("task: status %s, result %s, error %q, %v", task.Status, task.Result, task.Error, err)
	}
	wantGone(t, pidFile)
}
