package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testList(t *testing.T, newStore newStoreFunc) {
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			p    store.ListTasksParams
			want []string // by creation, oldest first
		}{
			{"None", store.ListTasksParams{}, taskIDs(1, 2, 3, 4, 5, 6, 7)},
			// A reserved task is pending.
			{"Pending", store.ListTasksParams{Status: taskwire.StatusPending}, taskIDs(1, 5, 7)},
			{"InProgress", store.ListTasksParams{Status: taskwire.StatusInProgress}, taskIDs(2, 6)},
			{"Completed", store.ListTasksParams{Status: taskwire.StatusCompleted}, taskIDs(3)},
			{"Failed", store.ListTasksParams{Status: taskwire.StatusFailed}, taskIDs(4)},
			// Held, reserved or finished by the worker.
			{"AssignedTo", store.ListTasksParams{AssignedTo: "w2"}, taskIDs(4, 5, 6)},
			{"Priority", store.ListTasksParams{Priority: ptr(50)}, taskIDs(1, 3, 6)},
			// Priority 0 filters too; it is not "no filter".
			{"PriorityZero", store.ListTasksParams{Priority: ptr(0)}, taskIDs(7)},
			{"Queue", store.ListTasksParams{Queue: "q2"}, taskIDs(3, 4, 6)},
			// Filters combine.
			{"Combined", store.ListTasksParams{Status: taskwire.StatusPending, Queue: taskwire.DefaultQueue, Priority: ptr(80)}, taskIDs(5)},
			{"NoMatch", store.ListTasksParams{Queue: "nope"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				filterFixture(s)
				p := tt.p
				p.Limit, p.OrderBy = 100, store.OrderByCreatedAt
				got, total := s.list(p)
				if diff := cmp.Diff(tt.want, got, taskOpts); diff != "" {
					t.Errorf("ListTasks (-want +got):\n%s", diff)
				}
				if total != len(tt.want) {
					t.Errorf("total = %d, want %d", total, len(tt.want))
				}
			})
		}
	})

	// Pages of Limit rows from Offset follow one stable order, and every
	// page reports the total.
	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		byCreation := map[string]int{} // id -> priority
		var all []string
		for n := 1; n <= 25; n++ {
			tk := newTask(n)
			tk.Priority = n % 3 // many ties, broken by id
			s.create(tk)
			all = append(all, tk.ID)
			byCreation[tk.ID] = tk.Priority
		}
		byPriority := slices.Clone(all)
		slices.SortStableFunc(byPriority, func(a, b string) int { return byCreation[a] - byCreation[b] })
		for _, by := range []store.OrderBy{store.OrderByCreatedAt, store.OrderByPriority} {
			for _, desc := range []bool{false, true} {
				want := all
				if by == store.OrderByPriority {
					want = byPriority
				}
				if desc {
					want = slices.Clone(want)
					slices.Reverse(want)
				}
				var pages []string
				for offset := 0; offset < 30; offset += 10 {
					page, total := s.list(store.ListTasksParams{Limit: 10, Offset: offset, OrderBy: by, Desc: desc})
					if total != 25 {
						t.Errorf("%s desc=%v offset %d: total = %d, want 25", by, desc, offset, total)
					}
					pages = append(pages, page...)
				}
				if diff := cmp.Diff(want, pages); diff != "" {
					t.Errorf("pages of 10 by %s, desc=%v (-want +got):\n%s", by, desc, diff)
				}
			}
		}
		if page, total := s.list(store.ListTasksParams{Limit: 10, Offset: 100, OrderBy: store.OrderByCreatedAt}); len(page) != 0 || total != 25 {
			t.Errorf("past the end: %v, total %d; want no rows, total 25", page, total)
		}
	})

	// Every column sorts both ways, ties broken by id in the same
	// direction. Statuses sort by their names; a missing value (no
	// assignee, not completed) sorts after every present one, both ways.
	t.Run("OrderBy", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			by        store.OrderBy
			asc, desc []string
		}{
			{store.OrderByCreatedAt, taskIDs(6, 1, 2, 3, 4, 5), taskIDs(5, 4, 3, 2, 1, 6)},
			{store.OrderByUpdatedAt, taskIDs(1, 2, 6, 5, 3, 4), taskIDs(4, 3, 5, 6, 2, 1)},
			{store.OrderByPriority, taskIDs(4, 1, 3, 6, 2, 5), taskIDs(5, 2, 6, 3, 1, 4)},
			{store.OrderByStatus, taskIDs(3, 4, 2, 1, 5, 6), taskIDs(6, 5, 1, 2, 4, 3)},
			{store.OrderByAssignedTo, taskIDs(3, 4, 5, 2, 1, 6), taskIDs(2, 5, 4, 3, 6, 1)},
			{store.OrderByCompletedAt, taskIDs(3, 4, 1, 2, 5, 6), taskIDs(4, 3, 6, 5, 2, 1)},
		}
		for _, tt := range tests {
			t.Run(string(tt.by), func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				orderFixture(s)
				for _, c := range []struct {
					desc bool
					want []string
				}{{false, tt.asc}, {true, tt.desc}} {
					got, _ := s.list(store.ListTasksParams{Limit: 100, OrderBy: tt.by, Desc: c.desc})
					if diff := cmp.Diff(c.want, got); diff != "" {
						t.Errorf("desc=%v (-want +got):\n%s", c.desc, diff)
					}
				}
			})
		}
	})

	// Rows carry results up to taskwire.ListResultLimit bytes; a larger one
	// is left out, with its size, and GetTask still has it whole.
	t.Run("LargeResults", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		small := json.RawMessage(`{"ok":true}`)
		atLimit := jsonString(taskwire.ListResultLimit)
		overLimit := jsonString(taskwire.ListResultLimit + 1)
		s.register("w1")
		for n, result := range []json.RawMessage{small, atLimit, overLimit} {
			s.claimed(newTask(n+1), "w1", t0.Add(time.Second))
			s.complete(store.CompleteTaskParams{ID: taskID(n + 1), WorkerID: "w1", Result: result, Now: t0.Add(2 * time.Second)})
		}
		s.create(newTask(4)) // no result

		rows, _, err := s.st.ListTasks(s.ctx, store.ListTasksParams{Limit: 10, OrderBy: store.OrderByCreatedAt})
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		type resultFields struct {
			Result    string
			Size      int64
			Truncated bool
		}
		var got []resultFields
		for _, r := range rows {
			got = append(got, resultFields{string(r.Result), r.ResultSize, r.ResultTruncated})
		}
		want := []resultFields{
			{string(small), int64(len(small)), false},
			{string(atLimit), taskwire.ListResultLimit, false},
			{"", taskwire.ListResultLimit + 1, true},
			{"", 0, false},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("result fields of the rows (-want +got):\n%s", diff)
		}
		if got := s.get(taskID(3)); string(got.Result) != string(overLimit) || got.ResultTruncated {
			t.Errorf("GetTask of the large result: %d bytes, truncated %v; want all %d bytes",
				len(got.Result), got.ResultTruncated, len(overLimit))
		}
	})
}

// filterFixture makes seven tasks:
//
//	1 default prio 50 pending
//	2 default prio 80 in_progress w1
//	3 q2      prio 50 completed   w1
//	4 q2      prio 10 failed      w2
//	5 default prio 80 pending, reserved for w2
//	6 q2      prio 50 in_progress w2
//	7 default prio 0  pending
func filterFixture(s *bundle) {
	s.t.Helper()
	spec := []struct {
		queue string
		prio  int
	}{{taskwire.DefaultQueue, 50}, {taskwire.DefaultQueue, 80}, {"q2", 50}, {"q2", 10}, {taskwire.DefaultQueue, 80}, {"q2", 50}, {taskwire.DefaultQueue, 0}}
	for n, sp := range spec {
		tk := newTask(n + 1)
		tk.Queue, tk.Priority = sp.queue, sp.prio
		s.create(tk)
	}
	s.register("w1")
	s.register("w2")
	at := t0.Add(time.Second)
	s.reclaimAll("w1", at, taskIDs(2))
	s.reclaimAll("w1", at, taskIDs(3), "q2")
	s.complete(store.CompleteTaskParams{ID: taskID(3), WorkerID: "w1", Now: at})
	s.reclaimAll("w2", at, taskIDs(6, 4), "q2") // 6 (prio 50) before 4 (prio 10)
	s.complete(store.CompleteTaskParams{ID: taskID(4), WorkerID: "w2", Failed: true, Error: "boom", Now: at})
	s.assign(taskID(5), "w2", at)
}

// orderFixture makes six tasks whose columns tie in places:
//
//	  created  updated  prio status      assigned completed
//	1 1ms      1ms      50   pending     -        -
//	2 2ms      10s      80   in_progress w2       -
//	3 3ms      20s      50   completed   w1       20s
//	4 3ms      20s      10   failed      w1       20s
//	5 5ms      12s      80   pending     w1       -
//	6 0ms      10s      50   pending     -        -
func orderFixture(s *bundle) {
	s.t.Helper()
	for n := 1; n <= 6; n++ {
		tk := newTask(n)
		switch n {
		case 2, 5:
			tk.Priority = 80
		case 3, 4:
			tk.Queue = "q"
			tk.CreatedAt = t0.Add(3 * time.Millisecond)
			if n == 4 {
				tk.Priority = 10
			}
		case 6:
			tk.CreatedAt = t0 // created first, though its id sorts last
		}
		tk.UpdatedAt, tk.RunAt = tk.CreatedAt, tk.CreatedAt
		s.create(tk)
	}
	s.register("w1")
	s.register("w2")
	s.reclaimAll("w2", t0.Add(10*time.Second), taskIDs(2))
	s.update(store.UpdateTaskParams{ID: taskID(6), Updates: taskwire.TaskUpdates{Text: ptr("edited")}, Now: t0.Add(10 * time.Second)})
	s.reclaimAll("w1", t0.Add(11*time.Second), taskIDs(3, 4), "q")
	s.assign(taskID(5), "w1", t0.Add(12*time.Second))
	s.complete(store.CompleteTaskParams{ID: taskID(3), WorkerID: "w1", Now: t0.Add(20 * time.Second)})
	s.complete(store.CompleteTaskParams{ID: taskID(4), WorkerID: "w1", Failed: true, Error: "boom", Now: t0.Add(20 * time.Second)})
}

// reclaimAll has worker claim exactly the tasks want from queues at now.
func (s *bundle) reclaimAll(worker string, now time.Time, want []string, queues ...string) {
	s.t.Helper()
	if got := ids(s.claim(worker, now, len(want), queues...)); !cmp.Equal(want, got) {
		s.t.Fatalf("%s claimed %v, want %v", worker, got, want)
	}
}

// jsonString returns a JSON string value of exactly size bytes.
func jsonString(size int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("r", size-2) + `"`)
}
