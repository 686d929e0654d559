package client

import (
	"context"
	"time"
)

// minBeat is the shortest wait between two heartbeats.
const minBeat = 200 * time.Millisecond

// heartbeatLoop heartbeats until ctx ends. A heartbeat renews the leases
// of all the worker's in-progress tasks, so it beats at the server's
// interval or, when shorter, a third of the shortest lease among the
// running tasks. A worker the server declared offline registers again. A
// refusal of the worker's token or role is passed to stop, and ends the
// loop.
func (w *Worker) heartbeatLoop(ctx context.Context, stop func(error)) {
	due := time.Now().Add(w.nextBeat())
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.beat:
			// A task with a short lease may bring the next beat
			// forward, never put it off.
			if d := w.nextBeat(); time.Now().Add(d).Before(due) {
				due = time.Now().Add(d)
				t.Reset(d)
			}
			continue
		case <-t.C:
		}
		r, err := w.c.Heartbeat(ctx, w.opts.ID)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && r.Alive:
		case err == nil || IsNotRegistered(err):
			w.log.Warn("the server declared this worker offline: registering again")
			if err = w.register(ctx); err != nil && ctx.Err() == nil && !refused(err) {
				w.log.Warn("register", "err", err)
			}
		case !refused(err):
			w.log.Warn("heartbeat", "err", err)
		}
		if refused(err) {
			stop(err)
			return
		}
		due = time.Now().Add(w.nextBeat())
		t.Reset(time.Until(due))
	}
}

// nextBeat returns the wait before the next heartbeat.
func (w *Worker) nextBeat() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.interval
	if d <= 0 {
		d = 10 * time.Second
	}
	for _, t := range w.running {
		if lease := time.Duration(t.LeaseMs) * time.Millisecond / 3; lease > 0 && lease < d {
			d = lease
		}
	}
	return max(d, minBeat)
}
