package sqlite

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

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

// checkCounts fails t when task_counts differs from a count of the tasks
// by queue and status.
func checkCounts(t *testing.T, s *Store) {
	t.Helper()
	kept := countsOf(t, s, "SELECT queue, status, n FROM task_counts WHERE n != 0")
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
