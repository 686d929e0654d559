package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// TestLargeResultMemory completes a task with a large result (64 MiB, or
// TASKWIRE_BIG_RESULT_MB) against a server process, checks that the
// process's peak resident memory stays under 3x the result size, and that
// GET /v1/tasks/{id}/result streams back the same bytes.
func TestLargeResultMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a large result through a server process")
	}
	if raceDetector {
		t.Skip("the race detector's shadow memory would be measured with the server's")
	}
	mb := 64
	if v := os.Getenv("TASKWIRE_BIG_RESULT_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			t.Fatalf("TASKWIRE_BIG_RESULT_MB=%q: %v", v, err)
		}
	}
	size := mb << 20
	srv := startChild(t, "--data", t.TempDir(), "--no-rate-limit")
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
	body = nil
	if err != nil || status != http.StatusOK || !strings.Contains(string(raw), `"completed"`) {
		t.Fatalf("complete: HTTP %d %v %.300s", status, err, raw)
	}
	peak := peakRSS(t, srv.cmd.Process.Pid)
	t.Logf("result %d MiB: server peak RSS %d MiB (%.2fx the result)", mb, peak>>20, float64(peak)/float64(size))
	if peak >= 3*int64(size) {
		t.Errorf("peak RSS %d MiB is not under 3x the %d MiB result", peak>>20, mb)
	}

	resp, err := http.Get(srv.URL + "/v1/tasks/" + claim.TaskID + "/result")
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

// peakRSS reads the peak resident set size (VmHWM) of a process.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read peak memory from: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmHWM not found")
	return 0
}
