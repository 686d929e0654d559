package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// TestLargeResultMemory completes a task with a large result (128 MiB, or
// TASKWIRE_BIG_RESULT_MB) against a server process, checks that the
// process's peak resident memory stays under 3x the result size, and that
// GET /v1/tasks/{id}/result streams back the same bytes.
func TestLargeResultMemory(t *testing.T) {
	size := largeResultSize(t)
	srv := startChild(t, "--data", t.TempDir(), "--no-rate-limit")
	id, result := completeLargeResult(t, srv, size)
	checkPeakRSS(t, srv, "complete", size)

	resp, err := http.Get(srv.URL + "/v1/tasks/" + id + "/result")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != int64(size) || resp.ContentLength != int64(size) {
		t.Fatalf("result stream: %d bytes (Content-Length %d), err %v; want %d", n, resp.ContentLength, err, size)
	}
	if want := sha256.Sum256(result); string(h.Sum(nil)) != string(want[:]) {
		t.Error("streamed result differs from the one sent")
	}
}

// TestLargeResultGetMemory answers task.get for a large result (128 MiB,
// or TASKWIRE_BIG_RESULT_MB) from a server process started after the
// result was stored, so that its peak resident memory is the answer's
// alone, and checks that it stays under 3x the result size and that the
// answer carries the result sent.
func TestLargeResultGetMemory(t *testing.T) {
	size := largeResultSize(t)
	dir := t.TempDir()
	srv := startChild(t, "--data", dir, "--no-rate-limit")
	id, result := completeLargeResult(t, srv, size)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-srv.done; err != nil {
		t.Fatalf("first server: %v", err)
	}
	srv = startChild(t, "--data", dir, "--no-rate-limit")
	raw, status, err := rpctest.New(srv.URL).Post(context.Background(),
		fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":%q}}`, id))
	if err != nil || status != http.StatusOK {
		t.Fatalf("task.get: HTTP %d %v %.300s", status, err, raw)
	}
	// The store mapped its database file, the result in it, when it
	// opened (see the README's Pages kept in memory): file pages, the
	// kernel's page cache, mapped before the request and as many after
	// it. Without them, the peak is the answer's own memory.
	peak, mapped := peakRSS(t, srv.cmd.Process.Pid), residentFile(t, srv.cmd.Process.Pid)
	t.Logf("task.get, result %d MiB: server peak RSS %d MiB, %d MiB of it mapped files; without them %.2fx the result",
		size>>20, peak>>20, mapped>>20, float64(peak-mapped)/float64(size))
	if peak-mapped >= 3*int64(size) {
		t.Errorf("task.get: peak RSS without mapped files %d MiB is not under 3x the %d MiB result", (peak-mapped)>>20, size>>20)
	}
	var answer struct {
		Result struct {
			Result json.RawMessage `json:"result"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("task.get answer: %v %.300s", err, raw)
	}
	if !bytes.Equal(answer.Result.Result, result) {
		t.Errorf("task.get answered a result of %d bytes that differs from the %d sent", len(answer.Result.Result), len(result))
	}
}

// largeResultSize is the size of the large results of the memory tests,
// 128 MiB or TASKWIRE_BIG_RESULT_MB; it skips the test where memory is not
// worth measuring. Smaller results weigh less than what the server holds
// whatever it does (its runtime, the pages of its database it maps).
func largeResultSize(t *testing.T) int {
	t.Helper()
	if testing.Short() {
		t.Skip("moves a large result through a server process")
	}
	if raceDetector {
		t.Skip("the race detector's shadow memory would be measured with the server's")
	}
	mb := 128
	if v := os.Getenv("TASKWIRE_BIG_RESULT_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			t.Fatalf("TASKWIRE_BIG_RESULT_MB=%q: %v", v, err)
		}
	}
	return mb << 20
}

// completeLargeResult has a worker of srv claim a new task and complete
// it with a result of size bytes (a JSON string), and returns the task's
// id and the result.
func completeLargeResult(t *testing.T, srv *child, size int) (string, []byte) {
	t.Helper()
	cl := rpctest.New(srv.URL)
	ctx := context.Background()
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "big"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "big result"}, nil); err != nil {
		t.Fatal(err)
	}
	var claim taskwire.ClaimResult
	if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "big"}, &claim); err != nil || !claim.Claimed {
		t.Fatalf("claim: %v %+v", err, claim)
	}
	// The result: a JSON string of size-2 bytes, so the value is size bytes.
	result := make([]byte, size)
	result[0], result[size-1] = '"', '"'
	for i := 1; i < size-1; i++ {
		result[i] = 'a' + byte(i%26)
	}
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"task.complete","params":{"id":%q,"workerId":"big","result":%s}}`, claim.TaskID, result)
	raw, status, err := cl.Post(ctx, body)
	if err != nil || status != http.StatusOK || !strings.Contains(string(raw), `"completed"`) {
		t.Fatalf("complete: HTTP %d %v %.300s", status, err, raw)
	}
	return claim.TaskID, result
}

// checkPeakRSS fails the test when srv's peak resident memory has reached
// 3x size, what moving a result of size bytes through it may take.
func checkPeakRSS(t *testing.T, srv *child, what string, size int) {
	t.Helper()
	peak := peakRSS(t, srv.cmd.Process.Pid)
	t.Logf("%s, result %d MiB: server peak RSS %d MiB (%.2fx the result); mapped files now %d MiB",
		what, size>>20, peak>>20, float64(peak)/float64(size), residentFile(t, srv.cmd.Process.Pid)>>20)
	if peak >= 3*int64(size) {
		t.Errorf("%s: peak RSS %d MiB is not under 3x the %d MiB result", what, peak>>20, size>>20)
	}
}

// peakRSS reads the peak resident set size (VmHWM) of a process.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	return procStatus(t, pid, "VmHWM")
}

// residentFile reads how much of a process's resident set is file pages
// it maps (RssFile).
func residentFile(t *testing.T, pid int) int64 {
	t.Helper()
	return procStatus(t, pid, "RssFile")
}

// procStatus reads a field in kB of a process's /proc status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read peak memory from: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("%s not found", field)
	return 0
}
