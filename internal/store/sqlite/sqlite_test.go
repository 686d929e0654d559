package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/storetest"
)

var _ store.Store = (*Store)(nil)

// TestConformance runs the rules every store follows; after each case, the
// counts kept for Stats must match the tasks the store holds.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t, Options{})
		t.Cleanup(func() { checkCounts(t, s) })
		return s
	})
}

// checkCounts fails t when the counts the writer keeps differ from a
// count of the tasks by queue and status.
func checkCounts(t *testing.T, s *Store) {
	t.Helper()
	kept := map[string]int{}
	for _, q := range s.w.counts.byQueue() {
		for status, n := range q.ByStatus {
			kept[q.Queue+" "+string(status)] = n
		}
	}
	counted := countsOf(t, s, "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status")
	if diff := cmp.Diff(counted, kept); diff != "" {
		t.Errorf("task_counts (-counted +kept):\n%s", diff)
	}
}

func countsOf(t *testing.T, s *Store, query string) map[string]int {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var queue, status string
		var n int
		if err := rows.Scan(&queue, &status, &n); err != nil {
			t.Fatal(err)
		}
		out[queue+" "+status] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCountsAcrossReopen checks the counts Stats and ListTasks read after
// an Open: those a clean Close saved, and after a crash (a copy of the
// files of an open store), those counted from the tasks.
func TestCountsAcrossReopen(t *testing.T) {
	t.Parallel()
	s, path := openAt(t, Options{})
	for n := 1; n <= 5; n++ {
		tk := task(n)
		if n > 3 {
			tk.Queue = "mail"
		}
		create(t, s, tk)
	}
	register(t, s, "w1")
	if _, err := s.ClaimTasks(t.Context(), store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	left := leftBehind(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := []store.QueueStats{
		{Queue: "default", ByStatus: map[taskwire.Status]int{taskwire.StatusPending: 2, taskwire.StatusInProgress: 1}},
		{Queue: "mail", ByStatus: map[taskwire.Status]int{taskwire.StatusPending: 2}},
	}
	for _, tt := range []struct{ name, path string }{{"clean", path}, {"crash", left}, {"clean again", path}} {
		s, err := Open(t.Context(), tt.path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(t.Context(), t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, st.Queues, cmpopts.IgnoreFields(store.QueueStats{}, "OldestPending")); diff != "" {
			t.Errorf("%s: stats (-want +got):\n%s", tt.name, diff)
		}
		_, total, err := s.ListTasks(t.Context(), store.ListTasksParams{Status: taskwire.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		if total != 4 {
			t.Errorf("%s: pending tasks listed in all: %d, want 4", tt.name, total)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
