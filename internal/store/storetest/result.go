package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

func testResult(t *testing.T, newStore newStoreFunc) {
	// OpenResult streams exactly the bytes of the result with their size,
	// ResultSize gives that size, and GetTask returns the same bytes,
	// however large.
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			result json.RawMessage
			short  bool // run with -short
		}{
			{"Small", json.RawMessage(`{"b":1,"a":[true,null,"é"]}`), true},
			// Bytes as given: spacing and number spelling kept.
			{"Spacing", json.RawMessage("{ \"a\" : 1.50 ,\n \"b\" : 1e3 }"), true},
			{"5MiB", bigResult(5 << 20), true},
			{"64MiB", bigResult(64 << 20), false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				if !tt.short && testing.Short() {
					t.Skip("a 64 MiB result is skipped with -short")
				}
				s := setup(t, newStore)
				s.claimed(newTask(1), "w1", t0.Add(time.Second))
				s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Result: tt.result, Now: t0.Add(2 * time.Second)})
				s.wantResult(taskID(1), tt.result)
				got := s.get(taskID(1))
				if what := sameBytes(tt.result, got.Result); what != "" {
					t.Errorf("GetTask result: %s", what)
				}
				if got.ResultSize != int64(len(tt.result)) {
					t.Errorf("GetTask ResultSize = %d, want %d", got.ResultSize, len(tt.result))
				}
				if size, err := s.st.ResultSize(s.ctx, taskID(1)); err != nil || size != int64(len(tt.result)) {
					t.Errorf("ResultSize = %d, %v; want %d", size, err, len(tt.result))
				}
			})
		}
	})

	// A task that is not final has no result to open.
	t.Run("NoResultYet", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			setup func(s *bundle)
		}{
			{"Pending", func(s *bundle) { s.create(newTask(1)) }},
			{"Reserved", reserved},
			{"InProgress", inProgress},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				r, _, err := s.st.OpenResult(s.ctx, taskID(1))
				if err == nil {
					r.Close()
				}
				if !errors.Is(err, store.ErrNoResult) {
					t.Errorf("OpenResult: err = %v, want store.ErrNoResult", err)
				}
				if _, err := s.st.ResultSize(s.ctx, taskID(1)); !errors.Is(err, store.ErrNoResult) {
					t.Errorf("ResultSize: err = %v, want store.ErrNoResult", err)
				}
			})
		}
	})

	t.Run("UnknownTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		completed(s)
		_, _, err := s.st.OpenResult(s.ctx, taskID(2))
		wantTaskNotFound(t, err, taskID(2))
		_, err = s.st.ResultSize(s.ctx, taskID(2))
		wantTaskNotFound(t, err, taskID(2))
	})
}

// wantResult checks that OpenResult of task id streams want with its size.
func (s *bundle) wantResult(id string, want []byte) {
	s.t.Helper()
	r, size, err := s.st.OpenResult(s.ctx, id)
	if err != nil {
		s.t.Fatalf("OpenResult(%s): %v", id, err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		s.t.Errorf("reading the result of %s: %v", id, err)
	}
	if err := r.Close(); err != nil {
		s.t.Errorf("closing the result of %s: %v", id, err)
	}
	if size != int64(len(want)) {
		s.t.Errorf("OpenResult(%s) size = %d, want %d", id, size, len(want))
	}
	if what := sameBytes(want, got); what != "" {
		s.t.Errorf("OpenResult(%s) stream: %s", id, what)
	}
}

// sameBytes returns "" when got is want, else where they differ, without
// printing megabytes.
func sameBytes(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	clip := func(b []byte) []byte { return b[i:min(len(b), i+40)] }
	return fmt.Sprintf("%d bytes, want %d; first difference at byte %d: %q, want %q",
		len(got), len(want), i, clip(got), clip(want))
}

// bigResult returns a JSON object of exactly size bytes whose content
// changes all along, so that a dropped or repeated chunk shows.
func bigResult(size int) json.RawMessage {
	const head, tail = `{"data":"`, `"}`
	b := make([]byte, 0, size)
	b = append(b, head...)
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	x := uint32(2463534242)
	for len(b) < size-len(tail) {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, alphabet[x%64])
	}
	return append(b, tail...)
}
