package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/rpctest"
)

// TestKillNineLosesNothingAcknowledged kills the server with SIGKILL in the
// middle of concurrent creates, claims and completions, restarts it on the
// same data directory, and checks that every create and every completion
// that was answered is there, result included.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir := t.TempDir()
	srv := startChild(t, "--data", dir, "--no-rate-limit")
	acks := &acknowledged{created: map[string]string{}, completed: map[string]json.RawMessage{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() { createAndComplete(ctx, rpctest.New(srv.URL), fmt.Sprintf("crash-w%d", w), acks) })
	}
	// Let the load run, then kill the server in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		acks.mu.Lock()
		n := len(acks.completed)
		acks.mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	cancel()
	wg.Wait()

	if len(acks.completed) == 0 {
		t.Fatal("no completion was acknowledged before the kill: the test proved nothing")
	}
	after := startChild(t, "--data", dir, "--no-rate-limit")
	checkAcknowledged(t, rpctest.New(after.URL), acks, 1)
	t.Logf("killed with SIGKILL after %d acknowledged creates and %d acknowledged completions; every one there after the restart: %v",
		len(acks.created), len(acks.completed), !t.Failed())
}
