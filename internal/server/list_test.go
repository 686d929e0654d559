package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// listFixture creates, one second apart on the fake clock:
//
//	0 default p50 pending
//	1 default p10 in_progress w1
//	2 emails  p90 pending
//	3 default p50 completed w1
//	4 emails  p10 failed w2
//	5 default p50 pending, reserved for w2
func listFixture(t *testing.T) (*bundle, []*taskwire.Task) {
	t.Helper()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	register(t, b, "w2", "emails")
	var tasks []*taskwire.Task
	for _, p := range []params{
		{"text": "t0"}, {"text": "t1", "priority": 10}, {"text": "t2", "queue": "emails", "priority": 90},
		{"text": "t3"}, {"text": "t4", "queue": "emails", "priority": 10}, {"text": "t5"},
	} {
		tasks = append(tasks, createTask(t, b, p))
		clk.Advance(time.Second)
	}
	// move reserves task i for worker, which then claims it.
	move := func(i int, worker string) {
		call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": tasks[i].ID, "workerId": worker})
		if c := claim(t, b, worker, nil); c.TaskID != tasks[i].ID {
			t.Fatalf("fixture: %s claimed %q, want task %d", worker, c.TaskID, i)
		}
		clk.Advance(time.Second)
	}
	move(1, "w1")
	move(3, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": tasks[3].ID, "result": "r3"})
	clk.Advance(time.Second)
	move(4, "w2")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": tasks[4].ID, "error": "e4"})
	clk.Advance(time.Second)
	call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": tasks[5].ID, "workerId": "w2"})
	for i := range tasks {
		tasks[i] = getTask(t, b, tasks[i].ID)
	}
	return b, tasks
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b, tasks := listFixture(t)
	wantStatus := []taskwire.Status{"pending", "in_progress", "pending", "completed", "failed", "pending"}
	for i, s := range wantStatus {
		if tasks[i].Status != s {
			t.Fatalf("fixture task %d is %s, want %s", i, tasks[i].Status, s)
		}
	}
	tests := []struct {
		name string
		p    params
		want []int // indexes into tasks, in order
	}{
		// Default: newest first.
		{"all", params{}, []int{5, 4, 3, 2, 1, 0}},
		{"status pending", params{"status": "pending"}, []int{5, 2, 0}},
		{"status in_progress", params{"status": "in_progress"}, []int{1}},
		{"status completed", params{"status": "completed"}, []int{3}},
		{"status failed", params{"status": "failed"}, []int{4}},
		{"queue", params{"queue": "emails"}, []int{4, 2}},
		{"queue without tasks", params{"queue": "nothing"}, nil},
		{"priority", params{"priority": 50}, []int{5, 3, 0}},
		{"assignedTo w1", params{"assignedTo": "w1"}, []int{3, 1}},
		// A reservation is an assignment too.
		{"assignedTo w2", params{"assignedTo": "w2"}, []int{5, 4}},
		{"status and queue", params{"status": "pending", "queue": "default"}, []int{5, 0}},
		{"assignedTo and status", params{"assignedTo": "w2", "status": "pending"}, []int{5}},
		{"priority and queue", params{"priority": 10, "queue": "emails"}, []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := listTasks(t, b, tt.p)
			want := taskwire.ListResult{Tasks: []*taskwire.Task{}, TotalCount: len(tt.want)}
			for _, i := range tt.want {
				want.Tasks = append(want.Tasks, tasks[i])
			}
			if diff := cmp.Diff(want, got, jsonEq); diff != "" {
				t.Errorf("task.list %v (-want +got):\n%s", tt.p, diff)
			}
		})
	}
}

func TestListOrder(t *testing.T) {
	t.Parallel()
	b, tasks := listFixture(t)
	tests := []struct {
		name string
		p    params
		want []int
	}{
		{"createdAt asc", params{"orderBy": "createdAt", "order": "asc"}, []int{0, 1, 2, 3, 4, 5}},
		{"createdAt desc", params{"orderBy": "createdAt", "order": "desc"}, []int{5, 4, 3, 2, 1, 0}},
		{"asc alone sorts by createdAt", params{"order": "asc"}, []int{0, 1, 2, 3, 4, 5}},
		// Ties broken by id in the same direction.
		{"priority desc", params{"orderBy": "priority"}, []int{2, 5, 3, 0, 4, 1}},
		{"priority asc", params{"orderBy": "priority", "order": "asc"}, []int{1, 4, 0, 3, 5, 2}},
		// updatedAt: the fixture touched 0 and 2 last at creation.
		{"updatedAt asc", params{"orderBy": "updatedAt", "order": "asc"}, []int{0, 2, 1, 3, 4, 5}},
		{"status asc", params{"orderBy": "status", "order": "asc"}, []int{3, 4, 1, 0, 2, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := listTasks(t, b, tt.p)
			var want []string
			for _, i := range tt.want {
				want = append(want, tasks[i].ID)
			}
			if diff := cmp.Diff(want, ids(got.Tasks)); diff != "" {
				t.Errorf("task.list %v order (-want +got):\n%s", tt.p, diff)
			}
		})
	}
	// completedAt and assignedTo: the tasks that have one, in order; the
	// rest after them.
	for _, tt := range []struct {
		p     params
		first []int
	}{
		{params{"orderBy": "completedAt", "order": "asc"}, []int{3, 4}},
		{params{"orderBy": "completedAt", "order": "desc"}, []int{4, 3}},
	} {
		got := ids(listTasks(t, b, tt.p).Tasks)
		var want []string
		for _, i := range tt.first {
			want = append(want, tasks[i].ID)
		}
		if diff := cmp.Diff(want, got[:len(want)]); diff != "" {
			t.Errorf("task.list %v order (-want +got):\n%s", tt.p, diff)
		}
	}
	got := listTasks(t, b, params{"orderBy": "assignedTo", "order": "asc"}).Tasks
	var assigned []string
	for _, task := range got {
		assigned = append(assigned, task.AssignedTo)
	}
	if !slices.IsSorted(assigned[:4]) || assigned[0] != "w1" || assigned[3] != "w2" || assigned[4] != "" || assigned[5] != "" {
		t.Errorf("assignedTo asc: %q, want w1 w1 w2 w2 then unassigned", assigned)
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t)
	var all []string
	for i := 0; i < 25; i++ {
		all = append(all, createTask(t, b, nil).ID)
	}
	slices.Reverse(all) // newest first
	tests := []struct {
		name    string
		p       params
		want    []string
		hasMore bool
	}{
		{"default page holds all", params{}, all, false},
		{"first page", params{"limit": 10}, all[:10], true},
		{"middle page", params{"limit": 10, "offset": 10}, all[10:20], true},
		{"last page", params{"limit": 10, "offset": 20}, all[20:], false},
		{"exact end", params{"limit": 5, "offset": 20}, all[20:], false},
		{"past the end", params{"limit": 10, "offset": 30}, []string{}, false},
		{"limit 1", params{"limit": 1, "offset": 24}, all[24:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := listTasks(t, b, tt.p)
			if diff := cmp.Diff(tt.want, ids(got.Tasks)); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
			if got.TotalCount != 25 || got.HasMore != tt.hasMore {
				t.Errorf("totalCount %d hasMore %v, want 25 %v", got.TotalCount, got.HasMore, tt.hasMore)
			}
		})
	}
	// An empty page is [] on the wire, not null.
	raw := rawObject(t, call[json.RawMessage](t, b, taskwire.MethodTaskList, params{"offset": 100}))
	if tasks, ok := raw["tasks"].([]any); !ok || len(tasks) != 0 {
		t.Errorf("tasks of an empty page = %v, want []", raw["tasks"])
	}
}

// TestListWhileCreating pages through the tasks, newest first, while
// tasks are created: every page's totalCount covers the rows up to its
// end, hasMore is true whenever another page holds tasks, and so a client
// that pages until hasMore is false reaches every task created before it
// began. The walks start a few pages before the end, where the total
// decides whether there is another page.
func TestListWhileCreating(t *testing.T) {
	t.Parallel()
	const (
		first    = 30   // tasks created before the paging begins
		last     = 2000 // the creators stop there, however slow the lists
		creators = 4
		walks    = 200
		limit    = 7
	)
	b := setup(t)
	for range first {
		createTask(t, b, nil)
	}
	var (
		acked atomic.Int64 // creates answered
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	acked.Store(first)
	for range creators {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if acked.Load() >= last {
						return
					}
				}
				var task taskwire.Task
				if err := b.cl.Call(context.Background(), taskwire.MethodTaskCreate, params{"text": "more"}, &task); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				acked.Add(1)
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for w := range walks {
		known := int(acked.Load())
		offset := max(0, known-2*limit-w%limit)
		for {
			page := listTasks(t, b, params{"limit": limit, "offset": offset})
			end := offset + len(page.Tasks)
			switch {
			case len(page.Tasks) > 0 && page.TotalCount < end:
				t.Fatalf("walk %d, offset %d: totalCount %d < %d rows up to the page's end (hasMore %v)",
					w, offset, page.TotalCount, end, page.HasMore)
			case page.HasMore != (offset+len(page.Tasks) < page.TotalCount):
				t.Fatalf("walk %d, offset %d: hasMore %v with totalCount %d and %d rows up to the page's end",
					w, offset, page.HasMore, page.TotalCount, end)
			}
			if !page.HasMore {
				if end < known {
					t.Fatalf("walk %d: paging ended at %d tasks (totalCount %d), %d were created before it began",
						w, end, page.TotalCount, known)
				}
				break
			}
			offset = end
		}
	}
}

func TestListErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name  string
		p     params
		field string
	}{
		{"limit 0", params{"limit": 0}, "limit"},
		{"limit 1001", params{"limit": 1001}, "limit"},
		{"offset negative", params{"offset": -1}, "offset"},
		{"orderBy unknown", params{"orderBy": "text"}, "orderBy"},
		{"order unknown", params{"order": "up"}, "order"},
		{"status unknown", params{"status": "done"}, "status"},
		{"priority 101", params{"priority": 101}, "priority"},
		{"queue invalid", params{"queue": "A"}, "queue"},
		{"unknown param", params{"sort": "asc"}, "sort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantInvalid(t, b, taskwire.MethodTaskList, tt.p, tt.field)
		})
	}
	if got := listTasks(t, b, params{"limit": 1000}); got.TotalCount != 0 {
		t.Errorf("limit 1000: %+v", got)
	}
}

func TestListLargeResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	small := `"` + strings.Repeat("s", taskwire.ListResultLimit-2) + `"` // exactly the limit
	large := `"` + strings.Repeat("L", taskwire.ListResultLimit-1) + `"` // one byte over
	results := map[string]string{}
	for _, r := range []string{small, large, `{"tiny":true}`} {
		task := createTask(t, b, nil)
		claimOne(t, b, "w1")
		call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete,
			params{"id": task.ID, "workerId": "w1", "result": json.RawMessage(r)})
		results[task.ID] = r
	}
	raw := call[json.RawMessage](t, b, taskwire.MethodTaskList, params{})
	var page struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 3 {
		t.Fatalf("%d rows, want 3", len(page.Tasks))
	}
	for _, row := range page.Tasks {
		id := row["id"].(string)
		r := results[id]
		if r == large {
			// Left out of the row, with its size.
			if row["result"] != nil || row["resultTruncated"] != true || row["resultSize"] != float64(len(large)) {
				t.Errorf("large result row: result %.20v, resultTruncated %v, resultSize %v; want null, true, %d",
					row["result"], row["resultTruncated"], row["resultSize"], len(large))
			}
		} else {
			var want any
			_ = json.Unmarshal([]byte(r), &want)
			if diff := cmp.Diff(want, row["result"]); diff != "" {
				t.Errorf("row %s result (-want +got):\n%.300s", id, diff)
			}
			if row["resultTruncated"] == true {
				t.Errorf("row %s of %d bytes marked truncated", id, len(r))
			}
		}
		// task.get returns every result whole.
		if got := getTask(t, b, id); string(got.Result) != r {
			t.Errorf("task.get %s: result of %d bytes, want %d", id, len(got.Result), len(r))
		}
	}
}
