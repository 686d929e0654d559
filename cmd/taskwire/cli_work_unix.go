//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// isolate runs cmd in a process group of its own, out of the reach of a
// terminal's Ctrl-C, which is taskwire's to handle: the command gets
// --grace to finish, then its whole group gets SIGTERM.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}
