package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testCreate(t *testing.T, newStore newStoreFunc) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		full := newTask(1)
		full.Queue = "emails.eu"
		full.Text = "send the newsletter ✉"
		full.Priority = 80
		full.Metadata = json.RawMessage(`{"customer":"acme","tags":["a","b"],"n":1.5,"nested":{"ok":true,"none":null}}`)
		full.MaxAttempts = 7
		full.LeaseMs = 45_000
		full.CreatedAt = t0.Add(987 * time.Millisecond)
		full.UpdatedAt = full.CreatedAt
		full.RunAt = t0.Add(time.Hour + 123*time.Millisecond)

		minimal := newTask(2)
		minimal.Priority = 0

		tests := []struct {
			name string
			task taskwire.Task
		}{
			// Every field a producer may set, a delayed runAt, times with milliseconds.
			{"Full", full},
			// No metadata, priority 0 (not mistaken for the default), ready at once.
			{"Minimal", minimal},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				got, created, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: tt.task, Now: tt.task.CreatedAt})
				if err != nil || !created {
					t.Fatalf("CreateTask = created %v, %v; want created", created, err)
				}
				wantReturned(t, "CreateTask", tt.task, got)
				s.wantStored(tt.task)
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		_, err := s.st.GetTask(s.ctx, taskID(2))
		wantTaskNotFound(t, err, taskID(2))
	})

	// A second create with the same key returns the first task as it is
	// now and creates nothing.
	t.Run("IdempotencyKey", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		first := newTask(1)
		createKeyed(t, s, first, "order-42", time.Hour, true)

		second := newTask(2)
		second.Text = "a different text"
		second.CreatedAt = t0.Add(30 * time.Minute)
		second.UpdatedAt, second.RunAt = second.CreatedAt, second.CreatedAt
		got := createKeyed(t, s, second, "order-42", time.Hour, false)
		wantReturned(t, "CreateTask (duplicate)", first, got)

		// The first task has moved on; the duplicate sees it as it is.
		claimed := s.reclaim(first.ID, first.Queue, "w1", t0.Add(31*time.Minute))
		third := newTask(3)
		third.CreatedAt = t0.Add(32 * time.Minute)
		got = createKeyed(t, s, third, "order-42", time.Hour, false)
		wantReturned(t, "CreateTask (duplicate after claim)", *claimed, got)

		for _, id := range []string{second.ID, third.ID} {
			_, err := s.st.GetTask(s.ctx, id)
			wantTaskNotFound(t, err, id)
		}
		if ids, total := s.list(store.ListTasksParams{Limit: 10}); total != 1 {
			t.Errorf("ListTasks = %v, total %d; want only the first task", ids, total)
		}
	})

	// A key is remembered for tasks created after Now - IdempotencyWindow.
	t.Run("IdempotencyWindow", func(t *testing.T) {
		t.Parallel()
		const window = time.Hour
		tests := []struct {
			name        string
			after       time.Duration // from the first task's creation
			wantCreated bool
		}{
			// Within the window the key still names the first task.
			{"Inside", window - time.Millisecond, false},
			// A task created exactly one window ago is no longer after Now - window.
			{"AtEnd", window, true},
			// Long after, the key is free again.
			{"After", 48 * time.Hour, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				first := newTask(1)
				createKeyed(t, s, first, "k", window, true)
				second := newTask(2)
				second.CreatedAt = first.CreatedAt.Add(tt.after)
				second.UpdatedAt, second.RunAt = second.CreatedAt, second.CreatedAt
				got := createKeyed(t, s, second, "k", window, tt.wantCreated)
				want, wantTotal := first, 1
				if tt.wantCreated {
					want, wantTotal = second, 2
				}
				wantReturned(t, "CreateTask", want, got)
				if ids, total := s.list(store.ListTasksParams{Limit: 10}); total != wantTotal {
					t.Errorf("ListTasks = %v, total %d; want total %d", ids, total, wantTotal)
				}
			})
		}
	})

	// Once a key has made a new task after its window, it names that task.
	t.Run("IdempotencyKeyNamesNewestTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		createKeyed(t, s, newTask(1), "k", time.Hour, true)
		second := newTask(2)
		second.CreatedAt = t0.Add(2 * time.Hour)
		second.UpdatedAt, second.RunAt = second.CreatedAt, second.CreatedAt
		createKeyed(t, s, second, "k", time.Hour, true)
		third := newTask(3)
		third.CreatedAt = t0.Add(2*time.Hour + time.Minute)
		got := createKeyed(t, s, third, "k", time.Hour, false)
		wantReturned(t, "CreateTask", second, got)
	})

	// Different keys, and no key at all, never deduplicate.
	t.Run("DistinctKeys", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		for n, key := range []string{"a", "b", "", ""} {
			createKeyed(t, s, newTask(n+1), key, time.Hour, true)
		}
		if ids, total := s.list(store.ListTasksParams{Limit: 10}); total != 4 {
			t.Errorf("ListTasks = %v, total %d; want 4", ids, total)
		}
	})
}

// createKeyed creates tk at its CreatedAt with an idempotency key and
// checks whether it was created.
func createKeyed(t *testing.T, s *bundle, tk taskwire.Task, key string, window time.Duration, wantCreated bool) *taskwire.Task {
	t.Helper()
	got, created, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{
		Task: tk, IdempotencyKey: key, IdempotencyWindow: window, Now: tk.CreatedAt,
	})
	if err != nil {
		t.Fatalf("CreateTask(%s, key %q): %v", tk.ID, key, err)
	}
	if created != wantCreated {
		t.Fatalf("CreateTask(%s, key %q) created = %v, want %v", tk.ID, key, created, wantCreated)
	}
	return got
}
