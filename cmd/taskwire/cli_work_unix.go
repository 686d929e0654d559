//go:build unix

package main

import (
	"os/exec"
	"syscall"
	"time"
)

// isolate runs cmd in a process group of its own, out of the reach of a
// terminal's Ctrl-C, which is taskwire's to handle: the command gets
// --grace (or --timeout) to finish, then its whole group gets SIGTERM,
// and SIGKILL once cmd.WaitDelay has passed, so that no process of the
// command that ignores SIGTERM outlives it.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		group := -cmd.Process.Pid
		time.AfterFunc(cmd.WaitDelay, func() { _ = syscall.Kill(group, syscall.SIGKILL) })
		return syscall.Kill(group, syscall.SIGTERM)
	}
}

// endGroup ends the processes cmd left running in its process group once
// cmd has exited, as a job's end does: SIGTERM at once, SIGKILL a second
// later to those that ignore it.
func endGroup(cmd *exec.Cmd) {
	group := -cmd.Process.Pid
	if syscall.Kill(group, syscall.SIGTERM) == nil {
		time.AfterFunc(time.Second, func() { _ = syscall.Kill(group, syscall.SIGKILL) })
	}
}
