package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// timeout is the WorkerTimeout of the sweeps of this suite.
const timeout = 30 * time.Second

func testSweep(t *testing.T, newStore newStoreFunc) {
	// A worker's own claims, completions and updates are signs of life as
	// much as its heartbeats: a worker busy with tasks is not silent.
	t.Run("WorkerCallsKeepItOnline", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2))
		s.register("w1")
		s.claim("w1", t0.Add(20*time.Second), 1)
		s.wantSweep(t0.Add(timeout), timeout, store.SweepResult{})
		s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Result: []byte(`1`), Now: t0.Add(45 * time.Second)})
		s.wantSweep(t0.Add(60*time.Second), timeout, store.SweepResult{})
		s.claim("w1", t0.Add(70*time.Second), 1)
		s.update(store.UpdateTaskParams{ID: taskID(2), WorkerID: "w1", Now: t0.Add(95 * time.Second)})
		s.wantSweep(t0.Add(95*time.Second+timeout-time.Millisecond), timeout, store.SweepResult{})
		// Silent from its update on: offline once the timeout has passed.
		s.wantSweep(t0.Add(95*time.Second+timeout), timeout, store.SweepResult{WorkersOffline: 1, Requeued: 1})
	})

	// Signs of life a few milliseconds apart count as much as those a
	// minute apart: LastSeen is the latest of them, and the sweep goes by
	// it.
	t.Run("WorkerCallsCloseTogether", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2))
		s.register("w1")
		s.claim("w1", t0.Add(10*time.Second), 2)
		s.update(store.UpdateTaskParams{ID: taskID(1), WorkerID: "w1", Now: t0.Add(10*time.Second + 200*time.Millisecond)})
		last := t0.Add(10*time.Second + 400*time.Millisecond)
		s.complete(store.CompleteTaskParams{ID: taskID(2), WorkerID: "w1", Result: []byte(`2`), Now: last})
		s.wantWorkers([]taskwire.Worker{{ID: "w1", Status: taskwire.WorkerOnline, RegisteredAt: t0, LastSeen: last,
			Tasks: []string{taskID(1)}}})
		s.wantSweep(last.Add(timeout-time.Millisecond), timeout, store.SweepResult{})
		s.wantSweep(last.Add(timeout), timeout, store.SweepResult{WorkersOffline: 1, Requeued: 1})
		s.wantWorkers([]taskwire.Worker{{ID: "w1", Status: taskwire.WorkerOffline, RegisteredAt: t0, LastSeen: last}})
	})

	// A worker silent for the timeout goes offline: it can no longer
	// claim, its heartbeat says it is not alive and changes nothing, and
	// registering again brings it back.
	t.Run("WorkerOffline", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		s.register("w1")
		s.register("w2")
		s.heartbeat("w2", t0.Add(10*time.Second))

		// LastSeen must be at or before Now - WorkerTimeout.
		s.wantSweep(t0.Add(timeout-time.Millisecond), timeout, store.SweepResult{})
		s.wantSweep(t0.Add(timeout), timeout, store.SweepResult{WorkersOffline: 1})
		// Offline already: not counted again.
		s.wantSweep(t0.Add(timeout+time.Second), timeout, store.SweepResult{})
		offline := []taskwire.Worker{
			{ID: "w1", Status: taskwire.WorkerOffline, RegisteredAt: t0, LastSeen: t0},
			{ID: "w2", Status: taskwire.WorkerOnline, RegisteredAt: t0, LastSeen: t0.Add(10 * time.Second)},
		}
		s.wantWorkers(offline)

		now := t0.Add(timeout + 2*time.Second)
		_, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: now})
		wantWorkerNotFound(t, err, "w1")
		alive, err := s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now})
		if err != nil || alive {
			t.Errorf("HeartbeatWorker of an offline worker = %v, %v; want not alive, no error", alive, err)
		}
		s.wantWorkers(offline)

		if err := s.st.RegisterWorker(s.ctx, store.RegisterWorkerParams{ID: "w1", Now: now}); err != nil {
			t.Fatalf("RegisterWorker again: %v", err)
		}
		if ws := s.workers(); ws[0].Status != taskwire.WorkerOnline || !ws[0].LastSeen.Equal(now) {
			t.Errorf("w1 registered again: %s, last seen %v; want online, %v", ws[0].Status, ws[0].LastSeen, now)
		}
		if got := ids(s.claim("w1", now, 1)); !cmp.Equal(taskIDs(1), got) {
			t.Errorf("w1 back online claimed %v, want %v", got, taskIDs(1))
		}
	})

	// The in_progress tasks of a worker that went offline go back to
	// pending, or fail on their last attempt (keeping their assignment, as
	// every final task does); its reservations are released; what it
	// finished and other workers' tasks stay as they are.
	t.Run("OfflineWorkerTasks", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		last := newTask(2)
		last.MaxAttempts = 1
		s.create(newTask(1), last, newTask(3), newTask(4), newTask(5))
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 3) // 1, 2, 3
		s.complete(store.CompleteTaskParams{ID: taskID(3), WorkerID: "w1", Now: t0.Add(2 * time.Second)})
		s.assign(taskID(4), "w1", t0.Add(3*time.Second))
		s.claim("w2", t0.Add(4*time.Second), 1) // 5
		s.heartbeat("w2", t0.Add(20*time.Second))
		before := s.getAll(5)

		now := t0.Add(2*time.Second + timeout) // w1 was last seen completing task 3
		s.wantSweep(now, timeout, store.SweepResult{WorkersOffline: 1, Requeued: 1, Failed: 1})

		requeued := *before[1]
		requeued.Status, requeued.AssignedTo, requeued.LeaseExpiresAt, requeued.UpdatedAt = taskwire.StatusPending, "", time.Time{}, now
		s.wantStored(requeued)
		s.wantStored(lastAttemptFailed(*before[2], "worker offline", now))
		released := *before[4]
		released.AssignedTo, released.UpdatedAt = "", now
		s.wantStored(released)
		s.unchanged(before[3])
		s.unchanged(before[5])

		// The offline worker's late completion finds the task gone back.
		_, _, err := s.st.CompleteTask(s.ctx, store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Now: now.Add(time.Second)})
		wantConflict(t, err, taskID(1), taskwire.StatusPending, "")
		s.wantStored(requeued)
	})

	// A lease that expires returns its task even though its worker is
	// alive; at or before Now is expired.
	t.Run("LeaseExpired", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		retry, last, longer := newTask(1), newTask(2), newTask(3)
		retry.LeaseMs, last.LeaseMs, longer.LeaseMs = 10_000, 10_000, 20_000
		last.MaxAttempts = 1
		s.create(retry, last, longer)
		s.register("w1")
		s.claim("w1", t0.Add(time.Second), 3)
		before := s.getAll(3)

		expiry := t0.Add(11 * time.Second)
		s.wantSweep(expiry.Add(-time.Millisecond), time.Hour, store.SweepResult{})
		for _, b := range before {
			s.unchanged(b)
		}
		s.wantSweep(expiry, time.Hour, store.SweepResult{Requeued: 1, Failed: 1})
		want := *before[1]
		want.Status, want.AssignedTo, want.LeaseExpiresAt, want.UpdatedAt = taskwire.StatusPending, "", time.Time{}, expiry
		s.wantStored(want)
		s.wantStored(leaseFailed(*before[2], expiry))
		s.unchanged(before[3])
		if ws := s.workers(); ws[0].Status != taskwire.WorkerOnline {
			t.Errorf("w1 is %s after its lease expired, want online", ws[0].Status)
		}
	})

	// The lease that expires on the last attempt fails the task with the
	// number of attempts it had.
	t.Run("LastAttempt", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.MaxAttempts, tk.LeaseMs = 2, 10_000
		s.claimed(tk, "w1", t0.Add(time.Second))
		s.wantSweep(t0.Add(11*time.Second), time.Hour, store.SweepResult{Requeued: 1})
		second := s.reclaim(tk.ID, tk.Queue, "w1", t0.Add(12*time.Second))
		if second.Attempt != 2 {
			t.Fatalf("claimed again: attempt %d, want 2", second.Attempt)
		}
		s.wantSweep(t0.Add(22*time.Second), time.Hour, store.SweepResult{Failed: 1})
		if got := s.get(tk.ID); got.Status != taskwire.StatusFailed || got.Error != "lease expired after 2 attempts" {
			t.Errorf("after the second expiry: %s, error %q; want failed, %q", got.Status, got.Error, "lease expired after 2 attempts")
		}
	})

	// A lease renewed by a heartbeat, or by the worker's update, runs from
	// the renewal.
	t.Run("LeaseRenewed", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		byHeartbeat, byUpdate := newTask(1), newTask(2)
		byHeartbeat.LeaseMs, byUpdate.LeaseMs = 10_000, 10_000
		s.create(byHeartbeat, byUpdate)
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 1)
		s.claim("w2", t0.Add(time.Second), 1)
		s.heartbeat("w1", t0.Add(5*time.Second))
		s.update(store.UpdateTaskParams{ID: taskID(2), WorkerID: "w2", Attempt: ptr(1),
			Updates: taskwire.TaskUpdates{Text: ptr("half done")}, Now: t0.Add(6 * time.Second)})
		before := s.getAll(2)

		s.wantSweep(t0.Add(11*time.Second), time.Hour, store.SweepResult{})
		s.unchanged(before[1])
		s.unchanged(before[2])
		s.wantSweep(t0.Add(15*time.Second), time.Hour, store.SweepResult{Requeued: 1})
		s.unchanged(before[2])
	})

	// A final task is never touched, whatever happens to its worker; nor
	// is a pending one.
	t.Run("FinalUntouched", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2), newTask(3), newTask(4))
		s.register("w1")
		s.claim("w1", t0.Add(time.Second), 3)
		s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Now: t0.Add(2 * time.Second)})
		s.complete(store.CompleteTaskParams{ID: taskID(2), WorkerID: "w1", Failed: true, Error: "boom", Now: t0.Add(2 * time.Second)})
		s.complete(store.CompleteTaskParams{ID: taskID(3), Failed: true, Error: "cancelled", Now: t0.Add(2 * time.Second)})
		before := s.getAll(4)
		s.wantSweep(t0.Add(time.Hour), timeout, store.SweepResult{WorkersOffline: 1})
		s.wantSweep(t0.Add(2*time.Hour), timeout, store.SweepResult{})
		for _, b := range before {
			s.unchanged(b)
		}
	})

	// NextRunAt is the earliest RunAt of a pending task still in the
	// future, zero when there is none.
	t.Run("NextRunAt", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.wantSweep(t0, timeout, store.SweepResult{})
		ready, soon, later, done := newTask(1), newTask(2), newTask(3), newTask(4)
		soon.RunAt, later.RunAt, done.RunAt = t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(10*time.Minute)
		s.create(ready, soon, later, done)
		// A reserved task completed before it was due is not pending.
		s.assign(done.ID, "w1", t0.Add(time.Second))
		s.complete(store.CompleteTaskParams{ID: done.ID, WorkerID: "w1", Now: t0.Add(2 * time.Second)})
		s.wantSweep(t0.Add(2*time.Second), timeout, store.SweepResult{NextRunAt: soon.RunAt})
		// Due now is not in the future.
		s.wantSweep(soon.RunAt, timeout, store.SweepResult{WorkersOffline: 1, NextRunAt: later.RunAt})
		s.wantSweep(t0.Add(3*time.Hour), timeout, store.SweepResult{})
	})

	// A task back in the queue keeps its place and is claimed again, one
	// attempt further.
	t.Run("RequeuedKeepsItsPlace", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2), newTask(3))
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 1)
		s.wantSweep(t0.Add(61*time.Second), time.Hour, store.SweepResult{Requeued: 1})
		got := s.claim("w2", t0.Add(62*time.Second), 1)
		if len(got) != 1 || got[0].ID != taskID(1) || got[0].Attempt != 2 || got[0].AssignedTo != "w2" {
			t.Errorf("w2 claimed %v, want %s at attempt 2", got, taskID(1))
		}
	})

	// After its lease expired, the old attempt's completion and update are
	// fenced out and change nothing, even when the same worker claimed the
	// task again; a sweep's failure is not the worker's to retry.
	t.Run("Fencing", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name         string
			maxAttempts  int
			reclaim      bool
			wantStatus   taskwire.Status
			wantAssigned string
		}{
			// Back in the queue.
			{"Requeued", 3, false, taskwire.StatusPending, ""},
			// Claimed again by the same worker: attempt 2.
			{"ReclaimedBySameWorker", 3, true, taskwire.StatusInProgress, "w1"},
			// Failed by the sweep on its last attempt.
			{"Failed", 1, false, taskwire.StatusFailed, "w1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tk := newTask(1)
				tk.MaxAttempts = tt.maxAttempts
				s.claimed(tk, "w1", t0.Add(time.Second))
				s.sweep(store.SweepParams{Now: t0.Add(61 * time.Second), WorkerTimeout: time.Hour})
				if tt.reclaim {
					s.reclaim(tk.ID, tk.Queue, "w1", t0.Add(62*time.Second))
				}
				before := s.get(tk.ID)
				mark := s.eventMark()
				now := t0.Add(63 * time.Second)
				calls := []store.CompleteTaskParams{
					{ID: tk.ID, WorkerID: "w1", Attempt: ptr(1), Result: []byte(`"late"`), Now: now},
					// The outcome the sweep gave it, claimed as the worker's own.
					{ID: tk.ID, WorkerID: "w1", Attempt: ptr(1), Failed: true, Error: "lease expired after 1 attempts", Now: now},
				}
				for _, p := range calls {
					_, _, err := s.st.CompleteTask(s.ctx, p)
					wantConflict(t, err, tk.ID, tt.wantStatus, tt.wantAssigned)
				}
				_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: tk.ID, WorkerID: "w1", Attempt: ptr(1),
					Updates: taskwire.TaskUpdates{Text: ptr("zombie")}, Now: now})
				wantConflict(t, err, tk.ID, tt.wantStatus, tt.wantAssigned)
				s.unchanged(before)
				s.wantEvents(mark)
			})
		}
	})

	t.Run("SweepCompleteRace", func(t *testing.T) { t.Parallel(); sweepCompleteRace(t, newStore) })
}

// sweepCompleteRace runs a sweep that finds a lease expired exactly at Now
// and the worker's completion at that Now, at once, many times: the task
// ends either completed by the worker, or requeued (failed, on its last
// attempt) by the sweep with the completion refused as a conflict; never
// both, and the event log tells the same story.
func sweepCompleteRace(t *testing.T, newStore newStoreFunc) {
	iterations := 2000
	if testing.Short() {
		iterations = 200
	}
	s := setup(t, newStore)
	s.register("w1")
	claimedAt := t0.Add(time.Minute) // after every task is due
	// Task n's lease expires n ms after the others': iteration n sweeps
	// at its expiry and finds it alone. Odd tasks are on their last attempt.
	for n := 1; n <= iterations; n++ {
		tk := newTask(n)
		tk.LeaseMs = 10_000 + int64(n)
		tk.MaxAttempts = 3
		if n%2 == 1 {
			tk.MaxAttempts = 1
		}
		s.create(tk)
	}
	for left := iterations; left > 0; left -= taskwire.MaxClaimTasks {
		s.claim("w1", claimedAt, taskwire.MaxClaimTasks)
	}
	mark := s.eventMark()

	type outcome struct {
		completeErr error
		sweep       *store.SweepResult
		sweepErr    error
	}
	outcomes := make([]outcome, iterations+1)
	for n := 1; n <= iterations; n++ {
		now := claimedAt.Add(time.Duration(10_000+n) * time.Millisecond)
		o := &outcomes[n]
		sweep := func() {
			o.sweep, o.sweepErr = s.st.Sweep(s.ctx, store.SweepParams{Now: now, WorkerTimeout: time.Hour})
		}
		complete := func() {
			_, _, o.completeErr = s.st.CompleteTask(s.ctx, store.CompleteTaskParams{ID: taskID(n), WorkerID: "w1",
				Attempt: ptr(1), Result: []byte(fmt.Sprintf(`{"n":%d}`, n)), Now: now})
		}
		if n/2%2 == 0 { // neither is always started first
			sweep, complete = complete, sweep
		}
		var wg sync.WaitGroup
		start := make(chan struct{}) // both go at once
		wg.Go(func() { <-start; sweep() })
		wg.Go(func() { <-start; complete() })
		close(start)
		wg.Wait()
		if o.sweepErr != nil {
			t.Fatalf("iteration %d: Sweep: %v", n, o.sweepErr)
		}
	}

	events := map[string][]taskwire.Event{}
	for _, e := range s.eventsAfter(mark) {
		events[e.TaskID] = append(events[e.TaskID], e)
	}
	var completed, requeued, failed int
	for n := 1; n <= iterations; n++ {
		o, got := outcomes[n], s.get(taskID(n))
		swept := o.sweep.Requeued + o.sweep.Failed
		var want []taskwire.Event
		switch {
		case o.completeErr == nil && swept == 0 && got.Status == taskwire.StatusCompleted &&
			string(got.Result) == fmt.Sprintf(`{"n":%d}`, n):
			completed++
			want = []taskwire.Event{store.TaskCompletedEvent(got, "w1")}
		case isConflict(o.completeErr) && o.sweep.Requeued == 1 && o.sweep.Failed == 0 &&
			got.Status == taskwire.StatusPending && got.AssignedTo == "" && got.Attempt == 1 && n%2 == 0:
			requeued++
			want = []taskwire.Event{store.TaskRequeuedEvent(got.ID, "w1", 1, store.RequeueLeaseExpired, store.SystemActor, got.UpdatedAt)}
		case isConflict(o.completeErr) && o.sweep.Failed == 1 && o.sweep.Requeued == 0 &&
			got.Status == taskwire.StatusFailed && got.Error == "lease expired after 1 attempts" && n%2 == 1:
			failed++
			want = []taskwire.Event{store.TaskCompletedEvent(got, store.SystemActor)}
		default:
			t.Errorf("iteration %d: complete err %v, sweep %+v, task %s (attempt %d, assigned %q, error %q, result %s): not one coherent outcome",
				n, o.completeErr, *o.sweep, got.Status, got.Attempt, got.AssignedTo, got.Error, got.Result)
			continue
		}
		if diff := cmp.Diff(eventViews(want), eventViews(events[taskID(n)])); diff != "" {
			t.Errorf("iteration %d: events of %s (-want +got):\n%s", n, got.Status, diff)
		}
	}
	t.Logf("%d iterations: %d completed by the worker, %d requeued and %d failed by the sweep",
		iterations, completed, requeued, failed)
}

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

// leaseFailed is task tk failed by a sweep at now on its last attempt.
func leaseFailed(tk taskwire.Task, now time.Time) taskwire.Task {
	return lastAttemptFailed(tk, "lease expired", now)
}

// lastAttemptFailed is task tk, in_progress on its last attempt, failed
// at now because its worker lost it (why: "lease expired", "worker
// offline", "worker unregistered").
func lastAttemptFailed(tk taskwire.Task, why string, now time.Time) taskwire.Task {
	tk.Status = taskwire.StatusFailed
	tk.Error = fmt.Sprintf("%s after %d attempts", why, tk.Attempt)
	tk.LeaseExpiresAt, tk.CompletedAt, tk.UpdatedAt = time.Time{}, now, now
	tk.DurationMs = now.Sub(tk.CreatedAt).Milliseconds()
	return tk
}

// sweep sweeps and fails the test on error.
func (s *bundle) sweep(p store.SweepParams) *store.SweepResult {
	s.t.Helper()
	r, err := s.st.Sweep(s.ctx, p)
	if err != nil {
		s.t.Fatalf("Sweep at %v: %v", p.Now, err)
	}
	return r
}

// wantSweep sweeps at now with the worker timeout, events kept, and checks
// the result.
func (s *bundle) wantSweep(now time.Time, workerTimeout time.Duration, want store.SweepResult) {
	s.t.Helper()
	got := s.sweep(store.SweepParams{Now: now, WorkerTimeout: workerTimeout})
	if diff := cmp.Diff(want, *got); diff != "" {
		s.t.Errorf("Sweep at %v (-want +got):\n%s", now, diff)
	}
}

// heartbeat has worker (registered when needed) send a heartbeat at now.
func (s *bundle) heartbeat(worker string, now time.Time) {
	s.t.Helper()
	if !s.registered[worker] {
		s.register(worker)
	}
	alive, err := s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: worker, Now: now})
	if err != nil || !alive {
		s.t.Fatalf("HeartbeatWorker(%s) = %v, %v; want alive", worker, alive, err)
	}
}

// getAll returns tasks 1 to n by number.
func (s *bundle) getAll(n int) map[int]*taskwire.Task {
	s.t.Helper()
	out := map[int]*taskwire.Task{}
	for i := 1; i <= n; i++ {
		out[i] = s.get(taskID(i))
	}
	return out
}
