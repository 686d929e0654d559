package storetest

import (
	"encoding/json"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// The cases of the event tests: the changes of tasks, of workers, and the
// operations that change nothing.

func taskEventCases() []eventCase {
	now := eventsNow
	none := func(*bundle) {}
	ev := func(evs ...taskwire.Event) []taskwire.Event { return evs }
	update := func(s *bundle, p store.UpdateTaskParams) *taskwire.Task {
		p.ID, p.Now = taskID(1), now
		s.update(p)
		return s.get(taskID(1))
	}
	toStatus := func(st taskwire.Status) taskwire.TaskUpdates { return taskwire.TaskUpdates{Status: &st} }
	return []eventCase{
		{"Create", none, func(s *bundle) []taskwire.Event {
			tk := newTask(1)
			tk.CreatedAt, tk.UpdatedAt, tk.RunAt = now, now, now
			if _, _, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: tk, By: "alice", Now: now}); err != nil {
				s.t.Fatalf("CreateTask: %v", err)
			}
			return ev(store.TaskCreatedEvent(s.get(tk.ID), "alice"))
		}},
		// One event per claimed task.
		{"Claim", func(s *bundle) {
			s.create(newTask(1), newTask(2), newTask(3))
			s.register("w1")
		}, func(s *bundle) []taskwire.Event {
			s.claim("w1", now, 2)
			return ev(store.TaskClaimedEvent(taskID(1), "w1", now), store.TaskClaimedEvent(taskID(2), "w1", now))
		}},
		// changes names the fields whose value changed: not the priority
		// set to what it was.
		{"Update", func(s *bundle) {
			tk := newTask(1)
			tk.Metadata = json.RawMessage(`{"a":1}`)
			s.create(tk)
		}, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: taskwire.TaskUpdates{Text: ptr("new"),
				Priority: ptr(taskwire.DefaultPriority), Metadata: json.RawMessage(`{"b":2}`)}})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{"text", "metadata"}, now))
		}},
		// A progress note of the worker: its lease renewed shows in the payload.
		{"UpdateByWorker", inProgress, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{WorkerID: "w1", Attempt: ptr(1), By: "w1",
				Updates: taskwire.TaskUpdates{Metadata: json.RawMessage(`{"progress":0.5}`)}})
			return ev(store.TaskUpdatedEvent(got, "w1", []string{"metadata"}, now))
		}},
		// The payload leaves a result out and says so, with its size.
		{"UpdateCompleted", completed, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: taskwire.TaskUpdates{Text: ptr("new")}})
			if got.ResultSize != int64(len(`{"ok":true}`)) {
				s.t.Fatalf("the completed task's resultSize is %d, want %d", got.ResultSize, len(`{"ok":true}`))
			}
			return ev(store.TaskUpdatedEvent(got, "alice", []string{"text"}, now))
		}},
		// An update that changes no value still writes its event.
		{"UpdateSameValues", func(s *bundle) { s.create(newTask(1)) }, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: taskwire.TaskUpdates{Text: ptr("task 1")}})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{}, now))
		}},
		// Back to pending: task.requeued too, its attempt kept.
		{"UpdateToPending", inProgress, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: toStatus(taskwire.StatusPending)})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{"status"}, now),
				store.TaskRequeuedEvent(taskID(1), "w1", 1, store.RequeueUpdate, "alice", now))
		}},
		// A reservation cleared by setting pending is a requeue, though the
		// status stays.
		{"UpdateReservedToPending", reserved, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: toStatus(taskwire.StatusPending)})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{}, now),
				store.TaskRequeuedEvent(taskID(1), "w1", 0, store.RequeueUpdate, "alice", now))
		}},
		// A re-run.
		{"UpdateCompletedToPending", completed, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: toStatus(taskwire.StatusPending)})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{"status"}, now),
				store.TaskRequeuedEvent(taskID(1), "w1", 1, store.RequeueUpdate, "alice", now))
		}},
		// Finalized by an update: task.completed too.
		{"UpdateToFailed", inProgress, func(s *bundle) []taskwire.Event {
			got := update(s, store.UpdateTaskParams{By: "alice", Updates: toStatus(taskwire.StatusFailed)})
			return ev(store.TaskUpdatedEvent(got, "alice", []string{"status"}, now), store.TaskCompletedEvent(got, "alice"))
		}},
		// completedBy is the worker when there is one...
		{"CompleteByWorker", inProgress, func(s *bundle) []taskwire.Event {
			got := s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", By: "token-of-w1",
				Result: json.RawMessage(`{"ok":true}`), Now: now})
			return ev(store.TaskCompletedEvent(got, "w1"))
		}},
		// ... else By.
		{"CompleteByAdmin", inProgress, func(s *bundle) []taskwire.Event {
			got := s.complete(store.CompleteTaskParams{ID: taskID(1), By: "alice", Failed: true, Error: "cancelled", Now: now})
			return ev(store.TaskCompletedEvent(got, "alice"))
		}},
		{"Assign", func(s *bundle) {
			s.create(newTask(1))
			s.register("w1")
		}, func(s *bundle) []taskwire.Event {
			if _, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: taskID(1), WorkerID: "w1", By: "alice", Now: now}); err != nil {
				s.t.Fatalf("AssignTask: %v", err)
			}
			return ev(store.TaskAssignedEvent(taskID(1), "w1", "alice", now))
		}},
		// Taken back from its worker: only task.unassigned.
		{"UnassignInProgress", inProgress, unassignChange},
		{"UnassignReserved", reserved, unassignChange},
		{"Delete", inProgress, func(s *bundle) []taskwire.Event {
			if err := s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: taskID(1), By: "alice", Now: now}); err != nil {
				s.t.Fatalf("DeleteTask: %v", err)
			}
			return ev(store.TaskDeletedEvent(taskID(1), "alice", now))
		}},
	}
}

// unassignChange unassigns task 1, held or reserved by w1, by alice.
func unassignChange(s *bundle) []taskwire.Event {
	if _, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: taskID(1), By: "alice", Now: eventsNow}); err != nil {
		s.t.Fatalf("UnassignTask: %v", err)
	}
	return []taskwire.Event{store.TaskUnassignedEvent(taskID(1), "w1", "alice", eventsNow)}
}

func workerEventCases() []eventCase {
	now := eventsNow
	registration := func(s *bundle) []taskwire.Event {
		p := store.RegisterWorkerParams{ID: "w1", Queues: []string{"a"}, Roles: []string{"worker"}, By: "w1", Now: now}
		if err := s.st.RegisterWorker(s.ctx, p); err != nil {
			s.t.Fatalf("RegisterWorker: %v", err)
		}
		return []taskwire.Event{store.WorkerRegisteredEvent("w1", p.Queues, p.Roles, "w1", now)}
	}
	return []eventCase{
		{"Register", func(*bundle) {}, registration},
		// A refresh is a registration too.
		{"RegisterAgain", func(s *bundle) { s.register("w1") }, registration},
		// Its in_progress tasks requeued, or failed on their last attempt
		// (by the caller, as the requeues), its reservation released.
		{"Unregister", func(s *bundle) {
			last := newTask(3)
			last.MaxAttempts = 1
			s.create(newTask(1), newTask(2), last, newTask(4))
			s.register("w1")
			s.claim("w1", t0.Add(time.Second), 3)
			s.assign(taskID(4), "w1", t0.Add(2*time.Second))
		}, func(s *bundle) []taskwire.Event {
			if _, err := s.st.UnregisterWorker(s.ctx, store.UnregisterWorkerParams{ID: "w1", By: "w1", Now: now}); err != nil {
				s.t.Fatalf("UnregisterWorker: %v", err)
			}
			return []taskwire.Event{
				store.WorkerUnregisteredEvent("w1", 2, "w1", now),
				store.TaskRequeuedEvent(taskID(1), "w1", 1, store.RequeueUnregistered, "w1", now),
				store.TaskRequeuedEvent(taskID(2), "w1", 1, store.RequeueUnregistered, "w1", now),
				store.TaskCompletedEvent(s.get(taskID(3)), "w1"),
				store.TaskUnassignedEvent(taskID(4), "w1", "w1", now),
			}
		}},
		// w1 silent: offline, its tasks requeued or failed, its reservation
		// released; w2 alive but its lease expired. All by the system.
		{"Sweep", func(s *bundle) {
			last, short := newTask(2), newTask(4)
			last.MaxAttempts, short.LeaseMs = 1, 5_000
			s.create(newTask(1), last, newTask(3), short)
			s.register("w1")
			s.register("w2")
			s.claim("w1", t0.Add(time.Second), 2)
			s.assign(taskID(3), "w1", t0.Add(2*time.Second))
			s.claim("w2", t0.Add(3*time.Second), 1)
			s.heartbeat("w2", now.Add(-10*time.Second))
		}, func(s *bundle) []taskwire.Event {
			s.wantSweep(now, timeout, store.SweepResult{WorkersOffline: 1, Requeued: 2, Failed: 1})
			return []taskwire.Event{
				store.WorkerOfflineEvent("w1", t0.Add(time.Second), now), // last seen claiming
				store.TaskRequeuedEvent(taskID(1), "w1", 1, store.RequeueWorkerOffline, store.SystemActor, now),
				store.TaskCompletedEvent(s.get(taskID(2)), store.SystemActor),
				store.TaskUnassignedEvent(taskID(3), "w1", store.SystemActor, now),
				store.TaskRequeuedEvent(taskID(4), "w2", 1, store.RequeueLeaseExpired, store.SystemActor, now),
			}
		}},
	}
}

// noEventCase is an operation that fails, or succeeds changing nothing.
type noEventCase struct {
	name    string
	setup   func(s *bundle)
	op      func(s *bundle) error
	wantErr bool
}

func noEventCases() []noEventCase {
	later := eventsNow
	complete := func(p store.CompleteTaskParams) func(s *bundle) error {
		return func(s *bundle) error {
			p.ID, p.Now = taskID(1), later
			_, _, err := s.st.CompleteTask(s.ctx, p)
			return err
		}
	}
	update := func(p store.UpdateTaskParams) func(s *bundle) error {
		return func(s *bundle) error {
			if p.ID == "" {
				p.ID = taskID(1)
			}
			p.Now = later
			_, err := s.st.UpdateTask(s.ctx, p)
			return err
		}
	}
	assign := func(worker string) func(s *bundle) error {
		return func(s *bundle) error {
			_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: taskID(1), WorkerID: worker, Now: later})
			return err
		}
	}
	unassign := func(s *bundle) error {
		_, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: taskID(1), Now: later})
		return err
	}
	claim := func(worker string) func(s *bundle) error {
		return func(s *bundle) error {
			_, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: worker, MaxTasks: 10, Now: later})
			return err
		}
	}
	pending := func(s *bundle) { s.create(newTask(1)) }
	return []noEventCase{
		// Successes that change nothing.
		{"CreateRepeated", func(s *bundle) { createKeyed(s.t, s, newTask(1), "k", time.Hour, true) },
			func(s *bundle) error {
				_, _, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: newTask(2), IdempotencyKey: "k",
					IdempotencyWindow: time.Hour, Now: newTask(2).CreatedAt})
				return err
			}, false},
		{"CompleteRetried", completed, complete(store.CompleteTaskParams{WorkerID: "w1", Result: json.RawMessage(`{"ok":true}`)}), false},
		{"AssignedAgain", reserved, assign("w1"), false},
		{"UnassignNothing", pending, unassign, false},
		{"ClaimNothing", func(s *bundle) { s.register("w1") }, claim("w1"), false},
		{"Heartbeat", inProgress, func(s *bundle) error {
			_, err := s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: "w1", Now: t0.Add(2 * time.Second)})
			return err
		}, false},
		{"SweepNothing", inProgress, func(s *bundle) error {
			_, err := s.st.Sweep(s.ctx, store.SweepParams{Now: t0.Add(2 * time.Second), WorkerTimeout: timeout,
				EventRetention: time.Hour, MaxEvents: 100})
			return err
		}, false},
		// Failures.
		{"UpdateStaleAttempt", inProgress, update(store.UpdateTaskParams{WorkerID: "w1", Attempt: ptr(2),
			Updates: taskwire.TaskUpdates{Text: ptr("x")}}), true},
		{"UpdateNotFound", pending, update(store.UpdateTaskParams{ID: taskID(2), Updates: taskwire.TaskUpdates{Text: ptr("x")}}), true},
		{"UpdateTooLarge", pending, update(store.UpdateTaskParams{Updates: taskwire.TaskUpdates{Text: ptr("x"), Metadata: bigMetadata}}), true},
		{"UpdateToInProgress", pending, update(store.UpdateTaskParams{
			Updates: taskwire.TaskUpdates{Text: ptr("x"), Status: ptr(taskwire.StatusInProgress)}}), true},
		{"CompleteOtherWorker", inProgress, complete(store.CompleteTaskParams{WorkerID: "w2"}), true},
		{"CompleteStaleAttempt", inProgress, complete(store.CompleteTaskParams{WorkerID: "w1", Attempt: ptr(2)}), true},
		{"CompleteOtherOutcome", completed, complete(store.CompleteTaskParams{WorkerID: "w1", Failed: true, Error: "late"}), true},
		{"CompleteUnassigned", pending, complete(store.CompleteTaskParams{}), true},
		{"AssignReservedForOther", func(s *bundle) { reserved(s); s.register("w2") }, assign("w2"), true},
		{"AssignUnknownWorker", pending, assign("w9"), true},
		{"UnassignFinal", completed, unassign, true},
		{"DeleteUnknown", pending, func(s *bundle) error {
			return s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: taskID(2), Now: later})
		}, true},
		{"UnregisterUnknown", inProgress, func(s *bundle) error {
			_, err := s.st.UnregisterWorker(s.ctx, store.UnregisterWorkerParams{ID: "w9", Now: later})
			return err
		}, true},
		{"ClaimUnknownWorker", pending, claim("w9"), true},
	}
}
