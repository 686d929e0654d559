package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run the taskwire command line ("1"), a
// worker ("worker") or a server whose WAL starts over often
// (walRestartChild) instead of the tests, so that tests can start real
// server and worker processes and kill them.
const childEnv = "TASKWIRE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "worker" {
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == walRestartChild {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := serveWALRestart(ctx, os.Args[1])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "taskwire:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signalContext()
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(report(os.Stderr, err)) // as main exits
	}
	os.Exit(m.Run())
}

// child is a taskwire process started by a test.
type child struct {
	cmd  *exec.Cmd
	URL  string
	done chan error
}

var readyLine = regexp.MustCompile(`listening on (http://\S+)`)

// startChild runs `taskwire serve` with args in a new process and waits for
// its ready line. The process is killed when the test ends.
func startChild(t testing.TB, args ...string) *child {
	t.Helper()
	return startProcess(t, "1", append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
}

// startProcess runs the test binary with args in a new process as the
// child named mode (see childEnv) and waits for its ready line. The
// process is killed when the test ends.
func startProcess(t testing.TB, mode string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case c.URL = <-urls:
	case err := <-c.done:
		t.Fatalf("taskwire exited before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("taskwire did not print its ready line within 30s")
	}
	return c
}
