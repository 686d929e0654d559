package sqlite

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// A task goes create -> claim -> complete and its result reads back whole,
// through GetTask and OpenResult.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	ctx := t.Context()
	create(t, s, task(1))
	register(t, s, "w1")
	if _, _, err := s.OpenResult(ctx, task(1).ID); !errors.Is(err, store.ErrNoResult) {
		t.Errorf("OpenResult of a pending task: %v, want ErrNoResult", err)
	}
	claimed, err := s.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: t0.Add(time.Second)})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimTasks = %v, %v; want one task", claimed, err)
	}
	result := json.RawMessage(`{"ok":true}`)
	done, _, err := s.CompleteTask(ctx, store.CompleteTaskParams{ID: task(1).ID, WorkerID: "w1", Result: result,
		Attempt: &claimed[0].Attempt, Now: t0.Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != taskwire.StatusCompleted || done.DurationMs != 2000-1 {
		t.Errorf("completed task: status %s, duration %d; want completed, 1999", done.Status, done.DurationMs)
	}
	got, err := s.GetTask(ctx, task(1).ID)
	if err != nil || !bytes.Equal(got.Result, result) || got.ResultSize != int64(len(result)) {
		t.Errorf("GetTask = result %s size %d, %v; want %s", got.Result, got.ResultSize, err, result)
	}
}

// A 64 MiB result is stored in chunks and streams back byte for byte.
func TestLargeResult(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB result")
	}
	t.Parallel()
	s := open(t, Options{})
	ctx := t.Context()
	create(t, s, task(1))
	register(t, s, "w1")
	if got, err := s.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: t0.Add(time.Second)}); err != nil || len(got) != 1 {
		t.Fatalf("ClaimTasks = %d tasks, %v; want one", len(got), err)
	}
	result := make([]byte, 64<<20+123)
	for i := range result {
		result[i] = byte('a' + i%26)
	}
	result[0], result[len(result)-1] = '"', '"'
	p := store.CompleteTaskParams{ID: task(1).ID, WorkerID: "w1", Result: result, Now: t0.Add(2 * time.Second)}
	if _, _, err := s.CompleteTask(ctx, p); err != nil {
		t.Fatal(err)
	}
	// A retry with the same outcome is recognized by checksum.
	if _, _, err := s.CompleteTask(ctx, p); err != nil {
		t.Errorf("retried completion: %v", err)
	}

	r, size, err := s.OpenResult(ctx, task(1).ID)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(result)) {
		t.Errorf("size = %d, want %d", size, len(result))
	}
	streamed, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if !bytes.Equal(streamed, result) {
		t.Errorf("streamed %d bytes that differ from the %d stored", len(streamed), len(result))
	}

	var chunks int
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM result_chunks WHERE task_id = ?", task(1).ID).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if want := (len(result) + chunkSize - 1) / chunkSize; chunks != want {
		t.Errorf("%d chunks, want %d", chunks, want)
	}

	listed, _, err := s.ListTasks(ctx, store.ListTasksParams{})
	if err != nil || len(listed) != 1 || listed[0].Result != nil || !listed[0].ResultTruncated || listed[0].ResultSize != size {
		t.Errorf("ListTasks = %+v, %v; want the result left out", listed, err)
	}
	got, err := s.GetTask(ctx, task(1).ID)
	if err != nil || !bytes.Equal(got.Result, result) {
		t.Errorf("GetTask: %v, result equal %v", err, err == nil && bytes.Equal(got.Result, result))
	}
}
