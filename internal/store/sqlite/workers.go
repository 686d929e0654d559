package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

const workerColumns = "id, status, roles, queues, metadata, registered_at, last_seen"

func scanWorker(sc scanner) (*taskwire.Worker, error) {
	var (
		w                    taskwire.Worker
		status, roles, qs    string
		metadata             sql.NullString
		registered, lastSeen int64
	)
	if err := sc.Scan(&w.ID, &status, &roles, &qs, &metadata, &registered, &lastSeen); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(roles), &w.Roles); err != nil {
		return nil, fmt.Errorf("worker %s roles: %w", w.ID, err)
	}
	if err := json.Unmarshal([]byte(qs), &w.Queues); err != nil {
		return nil, fmt.Errorf("worker %s queues: %w", w.ID, err)
	}
	w.Status = taskwire.WorkerStatus(status)
	if metadata.Valid {
		w.Metadata = json.RawMessage(metadata.String)
	}
	w.RegisteredAt, w.LastSeen = time.UnixMilli(registered).UTC(), time.UnixMilli(lastSeen).UTC()
	return &w, nil
}

// getWorker reads a registered worker, online or not, without its tasks.
func getWorker(q querier, id string) (*taskwire.Worker, error) {
	w, err := scanWorker(q.queryRow("SELECT "+workerColumns+" FROM workers WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &store.WorkerNotFoundError{ID: id}
	}
	return w, err
}

// RegisterWorker creates a worker, or refreshes one registered before (its
// roles, queues and metadata replaced, its first registration time kept);
// it is online afterwards.
func (s *Store) RegisterWorker(ctx context.Context, p store.RegisterWorkerParams) error {
	roles, err := json.Marshal(p.Roles)
	if err != nil {
		return fmt.Errorf("register worker %s: %w", p.ID, err)
	}
	queues, err := json.Marshal(p.Queues)
	if err != nil {
		return fmt.Errorf("register worker %s: %w", p.ID, err)
	}
	now := truncMs(p.Now)
	err = s.w.do(ctx, func(tx *writeTx) error {
		if _, err := tx.exec(`INSERT INTO workers (`+workerColumns+`) VALUES (?, 'online', ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = 'online', roles = excluded.roles,
			queues = excluded.queues, metadata = excluded.metadata, last_seen = excluded.last_seen`,
			p.ID, string(roles), string(queues), nullJSON(p.Metadata), ms(now), ms(now)); err != nil {
			return err
		}
		tx.appendEvent(store.WorkerRegisteredEvent(p.ID, p.Queues, p.Roles, p.By, now))
		return nil
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", p.ID, err)
	}
	return nil
}

// HeartbeatWorker records that an online worker is alive and renews the
// leases of its in_progress tasks; an offline worker gets false.
func (s *Store) HeartbeatWorker(ctx context.Context, p store.HeartbeatWorkerParams) (bool, error) {
	now := ms(p.Now)
	alive := false
	err := s.w.doRelaxed(ctx, func(tx *writeTx) error {
		w, err := getWorker(tx, p.ID)
		if err != nil || w.Status != taskwire.WorkerOnline {
			return err
		}
		if _, err := tx.exec("UPDATE workers SET last_seen = ? WHERE id = ?", now, p.ID); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE tasks SET lease_expires_at = ? + lease_ms
			WHERE assigned_to = ? AND status = 'in_progress'`, now, p.ID); err != nil {
			return err
		}
		alive = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("heartbeat of %s: %w", p.ID, err)
	}
	return alive, nil
}

// UnregisterWorker removes a worker: its in_progress tasks go back to
// pending (attempt kept), or fail when on their last attempt, as when
// their lease expires, and its reservations are cleared.
func (s *Store) UnregisterWorker(ctx context.Context, p store.UnregisterWorkerParams) (int, error) {
	now := truncMs(p.Now)
	requeued := 0
	err := s.w.do(ctx, func(tx *writeTx) error {
		if _, err := getWorker(tx, p.ID); err != nil {
			return err
		}
		held, err := queryTasks(tx, "SELECT "+taskColumns+" FROM tasks WHERE assigned_to = ? AND status = 'in_progress'", p.ID)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range held {
			back, err := releaseTask(tx, r, store.RequeueUnregistered, p.By, now)
			if err != nil {
				return err
			}
			if back {
				n++
			}
		}
		if err := releaseReservations(tx, p.ID, p.By, now); err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM workers WHERE id = ?", p.ID); err != nil {
			return err
		}
		requeued = n
		tx.appendEvent(store.WorkerUnregisteredEvent(p.ID, requeued, p.By, now))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("unregister worker %s: %w", p.ID, err)
	}
	return requeued, nil
}

// releaseReservations clears the reservations of worker (event
// task.unassigned each, by by).
func releaseReservations(tx *writeTx, worker, by string, now time.Time) error {
	rows, err := tx.query(`UPDATE tasks SET assigned_to = NULL, updated_at = ?
		WHERE assigned_to = ? AND status = 'pending' RETURNING id`, ms(now), worker)
	if err != nil {
		return err
	}
	var released []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		released = append(released, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, id := range released {
		tx.appendEvent(store.TaskUnassignedEvent(id, worker, by, now))
	}
	return nil
}

// ListWorkers returns every registered worker, ordered by id, with the
// ids of its in_progress tasks oldest first (creation time, then id), from
// one snapshot.
func (s *Store) ListWorkers(ctx context.Context) ([]taskwire.Worker, error) {
	var workers []taskwire.Worker
	err := s.view(ctx, func(tx *readTx) error {
		rows, err := tx.query("SELECT " + workerColumns + " FROM workers ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			w, err := scanWorker(rows)
			if err != nil {
				return err
			}
			w.LastSeen = s.w.tx.seen.lastSeen(w.ID, w.LastSeen)
			index[w.ID] = len(workers)
			workers = append(workers, *w)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		running, err := tx.query(`SELECT assigned_to, id FROM tasks
			WHERE status = 'in_progress' ORDER BY assigned_to, created_at, id`)
		if err != nil {
			return err
		}
		defer running.Close()
		for running.Next() {
			var worker, id string
			if err := running.Scan(&worker, &id); err != nil {
				return err
			}
			if i, ok := index[worker]; ok {
				workers[i].Tasks = append(workers[i].Tasks, id)
			}
		}
		return running.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return workers, nil
}

// touchWorker records a sign of life of an online worker (its claim,
// completion or update) as its LastSeen; "" (an admin's call) is left
// alone. Like an event, the touch is written when the batch commits
// (flushTouches) and dropped with its op when the op fails: a batch of
// calls by one worker writes its row once.
func (t *writeTx) touchWorker(id string, now time.Time) {
	if id != "" {
		t.touches = append(t.touches, touch{id, now.UnixMilli()})
	}
}

// touch is a sign of life of worker id at a time (ms).
type touch struct {
	id string
	at int64
}

// flushTouches writes the batch's touches, the latest of each worker,
// that signsOfLife finds due, and with all the signs of life it holds
// too, to the workers still online; a LastSeen never moves back, so
// writing one again is harmless. What it wrote and kept (wrote, kept)
// goes to signsOfLife once the batch has committed. The batch calls it at
// its end; Sweep calls it with all before reading LastSeen, so that no
// worker that called in is taken for silent (what the sweep wrote goes
// with its op when the op fails, like its touches).
func (t *writeTx) flushTouches(all bool) error {
	latest := make(map[string]int64, len(t.touches))
	if all {
		latest = t.seen.pending()
	}
	for _, tc := range t.touches {
		latest[tc.id] = max(latest[tc.id], tc.at)
	}
	for id, at := range latest {
		if !all && !t.seen.due(id, at) {
			t.kept = append(t.kept, touch{id, at})
			continue
		}
		if _, err := t.exec("UPDATE workers SET last_seen = max(last_seen, ?) WHERE id = ? AND status = 'online'", at, id); err != nil {
			return fmt.Errorf("worker %s last seen: %w", id, err)
		}
		t.wrote = append(t.wrote, touch{id, at})
	}
	return nil
}
