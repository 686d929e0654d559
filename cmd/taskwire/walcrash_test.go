package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// walRestartChild is the childEnv value of a server on the data directory
// given as its argument, without rate limits, whose WAL starts over past
// walRestartChildFrames frames instead of the default 32768, so that it
// starts over several times a second under load.
const (
	walRestartChild       = "wal-restart"
	walRestartChildFrames = 64
)

func serveWALRestart(ctx context.Context, dataDir string) error {
	srv, err := server.New(ctx, server.Config{
		DataDir:    dataDir,
		RateLimits: map[string]service.Limit{},
		SQLite:     sqlite.Options{WALRestartFrames: walRestartChildFrames},
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, "127.0.0.1:0", func(addr string) {
		fmt.Printf("listening on http://%s\n", addr)
	})
}

// acknowledged is what the servers of a test answered: every create (id ->
// text) and every completion (id -> result).
type acknowledged struct {
	mu        sync.Mutex
	created   map[string]string
	completed map[string]json.RawMessage
}

// TestKillNineWhileTheWALStartsOver kills the server with SIGKILL again and
// again under concurrent creates and completions, each time just after or
// a little while after its WAL started over, and requires every create and
// completion answered before each kill to be there after each restart,
// result included.
func TestKillNineWhileTheWALStartsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	const runs = 30
	dir := t.TempDir()
	wal := filepath.Join(dir, server.DatabaseFile+"-wal")
	acks := &acknowledged{created: map[string]string{}, completed: map[string]json.RawMessage{}}
	restarts := 0
	for run := range runs {
		srv := startProcess(t, walRestartChild, dir)
		checkAcknowledged(t, rpctest.New(srv.URL), acks, run)
		if t.Failed() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() { createAndComplete(ctx, rpctest.New(srv.URL), fmt.Sprintf("r%d-w%d", run, w), acks) })
		}
		restarts += killAfterWALRestarts(t, srv, wal, 1+run%3, run%2 == 0)
		cancel()
		wg.Wait()
	}
	srv := startProcess(t, walRestartChild, dir)
	checkAcknowledged(t, rpctest.New(srv.URL), acks, runs)
	t.Logf("%d runs killed with SIGKILL, the WAL started over %d times before the kills; %d creates and %d completions acknowledged, all checked after each restart",
		runs, restarts, len(acks.created), len(acks.completed))
	if len(acks.completed) == 0 {
		t.Fatal("no completion was acknowledged: the test proved nothing")
	}
}

// createAndComplete creates, claims and completes tasks as worker until
// ctx ends or a call fails, recording in acks what was answered. Results
// run from a few bytes to 8 KiB, so that the WAL fills with overflow
// pages too.
func createAndComplete(ctx context.Context, cl *rpctest.Client, worker string, acks *acknowledged) {
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": worker}, nil); err != nil {
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		text := fmt.Sprintf("job %d of %s", i, worker)
		var task taskwire.Task
		if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": text}, &task); err != nil {
			return
		}
		acks.mu.Lock()
		acks.created[task.ID] = text
		acks.mu.Unlock()
		var claim taskwire.ClaimResult
		if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": worker}, &claim); err != nil {
			return
		}
		if !claim.Claimed {
			continue
		}
		pad := strings.Repeat("x", rand.IntN(8<<10))
		result := json.RawMessage(fmt.Sprintf(`{"by":%q,"n":%d,"pad":%q}`, worker, i, pad))
		err := cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
			"id": claim.TaskID, "workerId": worker, "result": result}, nil)
		if err != nil {
			return
		}
		acks.mu.Lock()
		acks.completed[claim.TaskID] = result
		acks.mu.Unlock()
	}
}

// killAfterWALRestarts kills srv with SIGKILL once its WAL has started over
// n times: at once when soon, else after up to two checkpoint intervals
// more. It returns how many times the WAL started over.
func killAfterWALRestarts(t *testing.T, srv *child, wal string, n int, soon bool) int {
	t.Helper()
	first := walSequence(wal)
	deadline := time.Now().Add(60 * time.Second)
	for walSequence(wal) < first+uint32(n) {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL started over %d times in 60 s of load, want %d", walSequence(wal)-first, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	if !soon {
		time.Sleep(rand.N(500 * time.Millisecond))
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	return int(walSequence(wal) - first)
}

// walSequence reads the checkpoint sequence number of the WAL header,
// which SQLite increments each time the WAL starts over; 0 when there is
// no header yet.
func walSequence(path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	header := make([]byte, 32)
	if _, err := f.ReadAt(header, 0); err != nil {
		return 0
	}
	return binary.BigEndian.Uint32(header[12:16])
}

// checkAcknowledged requires every create and completion in acks to be
// on the server of cl, results included.
func checkAcknowledged(t *testing.T, cl *rpctest.Client, acks *acknowledged, run int) {
	t.Helper()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	ids := make([]string, 0, len(acks.created))
	for id := range acks.created {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 200 {
		batch := ids[start:min(start+200, len(ids))]
		calls := make([]rpctest.Call, len(batch))
		for i, id := range batch {
			calls[i] = rpctest.Call{Method: taskwire.MethodTaskGet, Params: map[string]any{"id": id}}
		}
		resps, err := cl.Batch(context.Background(), calls)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range resps {
			checkTask(t, batch[i], r, acks, run)
		}
	}
}

func checkTask(t *testing.T, id string, r rpctest.Response, acks *acknowledged, run int) {
	t.Helper()
	var task taskwire.Task
	if r.Error != nil || unmarshalTask(r.Result, &task) != nil {
		t.Errorf("after kill %d: acknowledged create %s lost: %v", run, id, r.Error)
		return
	}
	if task.Text != acks.created[id] {
		t.Errorf("after kill %d: task %s text = %q, want %q", run, id, task.Text, acks.created[id])
	}
	want, ok := acks.completed[id]
	if ok && (task.Status != taskwire.StatusCompleted || string(task.Result) != string(want)) {
		t.Errorf("after kill %d: acknowledged completion of %s lost: status %s, result of %d bytes, want %d bytes",
			run, id, task.Status, len(task.Result), len(want))
	}
}
