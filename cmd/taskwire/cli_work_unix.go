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
