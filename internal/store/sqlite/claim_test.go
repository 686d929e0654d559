package sqlite

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// 20 workers claiming 500 tasks at once get each task exactly once.
func TestClaimConcurrentHandsOutOnce(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	const tasks, workers = 500, 20
	for n := 1; n <= tasks; n++ {
		create(t, s, task(n))
	}
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	for w := range workers {
		id := fmt.Sprintf("w%d", w)
		register(t, s, id)
		wg.Go(func() {
			for {
				got, err := s.ClaimTasks(t.Context(), store.ClaimTasksParams{WorkerID: id, MaxTasks: 3, Now: t0.Add(time.Minute)})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, tk := range got {
					if prev, ok := owner[tk.ID]; ok {
						t.Errorf("%s handed to %s and %s", tk.ID, prev, id)
					}
					owner[tk.ID] = id
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(owner) != tasks {
		t.Errorf("%d tasks claimed, want %d", len(owner), tasks)
	}
}

// The claim, stats, list and sweep queries are index seeks, never a scan
// or a sort of the tasks, whatever their number; the claim and stats ones
// read the index alone.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	queries := []struct {
		name, query string
		args        []any
		want        string // in the plan
	}{
		{"ready", readyQuery, []any{"q", 1, 10}, "COVERING INDEX tasks_ready"},
		{"reserved", reservedQuery, []any{"w", 1, 10}, "COVERING INDEX tasks_reserved"},
		{"oldest pending", oldestPendingQuery, []any{"q", 1}, "COVERING INDEX tasks_pending_ready"},
		{"running", "SELECT id FROM tasks WHERE assigned_to = ? AND status = 'in_progress'", []any{"w"}, "INDEX tasks_running"},
		{"list", "SELECT id FROM tasks ORDER BY created_at DESC, id DESC LIMIT 100", nil, "INDEX tasks_created"},
		{"expired leases", expiredQuery, []any{1, 10}, "INDEX tasks_lease"},
		{"next run", nextRunQuery, []any{1}, "INDEX tasks_pending_run_at"},
		{"silent workers", silentQuery, []any{1, 10}, "INDEX workers_seen"},
	}
	for _, q := range queries {
		rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.query, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan += detail + "; "
		}
		rows.Close()
		if !strings.Contains(plan, q.want) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan %q, want %s without a sort", q.name, plan, q.want)
		}
	}
}
