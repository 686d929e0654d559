package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// A first interrupt lets bench clean up; a second ends the process at
// once, even while the cleanup waits on a server that does not answer
// (stopped with SIGSTOP here): it dies of the signal rather than wait out
// its timeouts (30 s each). The test sends SIGTERM, which signalContext
// treats as SIGINT: a process started in the background by a shell
// without job control, as tests may be, has SIGINT ignored from the
// start, and a second SIGINT is then ignored again.
func TestSecondInterruptEndsAtOnce(t *testing.T) {
	t.Parallel()
	srv := startChild(t, "--data", t.TempDir(), "--no-rate-limit")
	queue := "bench-second-interrupt"
	bench := exec.Command(os.Args[0], "bench", "--server", srv.URL, "--tasks", "100000", "--workers", "2", "--queue", queue)
	bench.Env = append(os.Environ(), childEnv+"=1")
	stderr, err := bench.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bench.Process.Kill() })
	cleaning := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "bench: interrupted; cleaning up") {
				close(cleaning)
			}
		}
		exited <- bench.Wait()
	}()

	c := client.New(srv.URL, client.Options{})
	for deadline := time.Now().Add(20 * time.Second); ; {
		list, err := c.ListTasks(t.Context(), taskwire.ListParams{Queue: queue, Limit: client.Ptr(1)})
		if err == nil && list.TotalCount > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bench created no task in 20 s (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopServer(t, srv)
	if err := bench.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The first interrupt is taken: bench says it cleans up, and waits.
	select {
	case <-cleaning:
	case err := <-exited:
		t.Fatalf("bench exited at the first interrupt, with the server stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("bench did not say it cleans up within 20 s of an interrupt")
	}
	if err := bench.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("bench after a second interrupt: %v, want it killed by SIGTERM", err)
		}
		ws := exit.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("bench after a second interrupt: %v, want it killed by SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("bench still running 20 s after a second interrupt")
	}
}

// stopServer stops srv's process (SIGSTOP) until the test ends.
func stopServer(t *testing.T, srv *child) {
	t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.cmd.Process.Signal(syscall.SIGCONT) })
}
