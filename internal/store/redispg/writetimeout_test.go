package redispg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// blackhole forwards TCP connections to a target until hold: from then on
// it accepts and reads but forwards nothing either way, like a network
// that drops every packet.
type blackhole struct {
	ln     net.Listener
	target string
	held   atomic.Bool
	// paused, while set, keeps the bytes of the connections open instead
	// (they go on when it is cleared, like a network that stalls and then
	// recovers), and refuses new ones, such as a request to cancel.
	paused atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	go b.accept()
	return b
}

// startBlackholeTo starts a blackhole to the service at rawURL and
// returns it with rawURL's address changed to its.
func startBlackholeTo(t *testing.T, rawURL string) (*blackhole, *url.URL) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	hole := startBlackhole(t, u.Host)
	u.Host = hole.ln.Addr().String()
	return hole, u
}

func (b *blackhole) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if b.paused.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, up)
		b.mu.Unlock()
		go b.pipe(up, c)
		go b.pipe(c, up)
	}
}

// pipe copies from src to dst until either closes, dropping the bytes
// while held.
func (b *blackhole) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for b.paused.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 && !b.held.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close stops listening and closes every connection.
func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// TestWriteTimeout: with PostgreSQL silent (its packets dropped), a
// create answers a *store.UnavailableError once WriteTimeout passes, and a
// caller whose context ends first gets its context's error; neither hangs.
func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	hole, u := startBlackholeTo(t, testPostgresURL)
	pool := env.poolAt(t, u.String())
	open := func(timeout time.Duration) *Store {
		return env.openOn(t, pool, Options{ReconcileInterval: -1, WriteTimeout: timeout})
	}
	st := open(time.Second)
	slow := open(time.Hour) // for a caller giving up before the store
	t.Cleanup(hole.close)   // first: the stores' connections end at once

	now := time.Now().UTC()
	newTask := func(id string) store.CreateTaskParams {
		return store.CreateTaskParams{Task: readyTask(id, now), Now: now}
	}
	if _, _, err := st.CreateTask(t.Context(), newTask("t-before")); err != nil {
		t.Fatalf("create before the blackhole: %v", err)
	}
	hole.held.Store(true)

	for _, key := range []string{"", "key-1"} { // group commit, and the keyed create's own transaction
		p := newTask("t-held" + key)
		p.IdempotencyKey, p.IdempotencyWindow = key, time.Hour
		start := time.Now()
		err := createWithin(t, st, context.Background(), p)
		t.Logf("create (key %q) answered after %v: %v", key, time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("create (key %q) with PostgreSQL silent: %v; want a *store.UnavailableError", key, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := createWithin(t, slow, ctx, newTask("t-caller")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("create with the caller's deadline passed: %v; want context.DeadlineExceeded", err)
	}
}

// TestCallTimeout: with PostgreSQL silent (its packets dropped), the
// calls other than creates and completions that wait on it (writes that
// commit there, reads of lists and results, opening a result to stream
// it) answer a
// *store.UnavailableError naming it once WriteTimeout passes, and do not
// hang; those served by Redis alone go on working.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	_, hole, st := behindBlackhole(t)

	ctx := t.Context()
	now := time.Now().UTC()
	register(t, st, "w1", now)
	assigned(t, st, "t-done", "w1", now)
	if got := claim(t, st, "w1", now); len(got) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(got))
	}
	if _, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: "t-done", WorkerID: "w1", Attempt: new(1),
		Result: []byte(`{"done":true}`), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask("t-pending", now), Now: now}); err != nil {
		t.Fatal(err)
	}
	hole.held.Store(true)

	text := "changed"
	for name, call := range map[string]func(context.Context) error{
		"update": func(ctx context.Context) error {
			_, err := st.UpdateTask(ctx, store.UpdateTaskParams{ID: "t-pending", Updates: taskwire.TaskUpdates{Text: &text}, Now: now})
			return err
		},
		"delete": func(ctx context.Context) error {
			return st.DeleteTask(ctx, store.DeleteTaskParams{ID: "t-pending", Now: now})
		},
		"unregister": func(ctx context.Context) error {
			_, err := st.UnregisterWorker(ctx, store.UnregisterWorkerParams{ID: "w1", Now: now})
			return err
		},
		"list": func(ctx context.Context) error {
			_, _, err := st.ListTasks(ctx, store.ListTasksParams{})
			return err
		},
		"get result": func(ctx context.Context) error {
			_, err := st.GetTask(ctx, "t-done")
			return err
		},
		"open result": func(ctx context.Context) error {
			rc, _, err := st.OpenResult(ctx, "t-done")
			if err == nil {
				rc.Close()
			}
			return err
		},
	} {
		err := answerWithin(t, name, func() error { return call(context.Background()) })
		var u *store.UnavailableError
		if !errors.As(err, &u) || u.Backend != "postgres" {
			t.Errorf("%s with PostgreSQL silent: %v; want a *store.UnavailableError of postgres", name, err)
		}
	}
	if alive, err := st.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now}); err != nil || !alive {
		t.Errorf("heartbeat with PostgreSQL silent: %v, %v; want served by Redis", alive, err)
	}
}

// TestCallTimeoutRedis: with Redis silent (its packets dropped), calls
// served by Redis (a create's enqueue and settling included) answer a *store.UnavailableError naming it, within
// WriteTimeout as the store Connect opens bounds them (the time each took
// is logged).
func TestCallTimeoutRedis(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	hole, ru := startBlackholeTo(t, testRedisURL)
	ru.RawQuery = "prefix=" + env.prefix
	st, err := Connect(t.Context(), ConnectOptions{RedisURL: ru.String(),
		PostgresURL: testPostgresURL + "&schema=" + env.schema,
		Options:     Options{ReconcileInterval: -1, WriteTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t.Cleanup(hole.close) // first: the store's connections end at once
	now := time.Now().UTC()
	register(t, st, "w1", now)
	hole.held.Store(true)

	for name, call := range map[string]func(context.Context) error{
		"heartbeat": func(ctx context.Context) error {
			_, err := st.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now})
			return err
		},
		"claim": func(ctx context.Context) error {
			_, err := st.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: "w1", Now: now})
			return err
		},
		"create": func(ctx context.Context) error {
			_, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask("t-silent", now), Now: now})
			return err
		},
	} {
		start := time.Now()
		err := answerWithin(t, name, func() error { return call(context.Background()) })
		t.Logf("%s answered after %v: %v", name, time.Since(start).Round(time.Millisecond), err)
		var u *store.UnavailableError
		if !errors.As(err, &u) || u.Backend != "redis" {
			t.Errorf("%s with Redis silent: %v; want a *store.UnavailableError of redis", name, err)
		}
	}
}

// createWithin runs p's create on st and returns its error (see
// answerWithin).
func createWithin(t *testing.T, st *Store, ctx context.Context, p store.CreateTaskParams) error {
	t.Helper()
	return answerWithin(t, "create "+p.Task.ID, func() error {
		_, _, err := st.CreateTask(ctx, p)
		return err
	})
}

// answerWithin runs call and returns its error, failing the test when it
// has not answered after a minute (it hangs).
func answerWithin(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s still waiting after a minute", what)
		return nil
	}
}

// TestCreateCommittedLateNotMade: a create whose row PostgreSQL had not
// acknowledged when WriteTimeout passed answers an error, and so makes no
// task, even when its statements, held up on the way, commit the row
// afterwards (a group commit sends its whole transaction at once): the
// reconciler takes the row back instead of enqueueing it.
func TestCreateCommittedLateNotMade(t *testing.T) {
	t.Parallel()
	env, hole, st := behindBlackhole(t)
	ctx := t.Context()
	now := time.Now().UTC()
	late := ""
	// A connection sends a group commit whole once it has prepared its
	// statements: a create first warms one, and the held create most
	// likely takes the same; a fresh one would send nothing past its
	// first round trip, and the try is made again.
	for try := 1; try <= 5 && late == ""; try++ {
		warm, held := fmt.Sprintf("t-warm%d", try), fmt.Sprintf("t-late%d", try)
		if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask(warm, now), Now: now}); err != nil {
			t.Fatal(err)
		}
		hole.paused.Store(true)
		err := createWithin(t, st, ctx, store.CreateTaskParams{Task: readyTask(held, now), Now: now})
		hole.paused.Store(false)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("create with PostgreSQL stalled: %v; want a *store.UnavailableError", err)
		}
		if rowCommits(t, env.pool(t), held) {
			late = held
		}
	}
	if late == "" {
		t.Fatal("no held create committed its row late in five tries")
	}
	if got, err := st.GetTask(ctx, late); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(%s) once its row committed: %+v, %v; want not found", late, got, err)
	}
	time.Sleep(reconcileGrace + 500*time.Millisecond) // the reconciler leaves fresh rows alone
	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetTask(ctx, late); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(%s) after reconciling: %+v, %v; want not found", late, got, err)
	}
	rows, _, err := st.ListTasks(ctx, store.ListTasksParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !strings.HasPrefix(r.ID, "t-warm") {
			t.Errorf("ListTasks holds %s, a create answered an error", r.ID)
		}
	}
}

// behindBlackhole opens a store on a fresh environment whose PostgreSQL
// it reaches through a blackhole, with a WriteTimeout of a second and no
// reconciler of its own.
func behindBlackhole(t *testing.T) (*testEnv, *blackhole, *Store) {
	t.Helper()
	env := newTestEnv(t)
	hole, u := startBlackholeTo(t, testPostgresURL)
	st := env.openOn(t, env.poolAt(t, u.String()), Options{ReconcileInterval: -1, WriteTimeout: time.Second})
	t.Cleanup(hole.close) // first: the store's connections end at once
	return env, hole, st
}

// rowCommits reports whether PostgreSQL holds the row of task id within
// 5 s: a held group commit sent whole commits once its bytes go on.
func rowCommits(t *testing.T, pool *pgxpool.Pool, id string) bool {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM tasks WHERE id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return true
		}
	}
	return false
}

// TestKeyedCreateNotFenced: a create with an idempotency key that
// PostgreSQL did not answer in time is not fenced off. Its transaction
// waits for each statement, so a row it committed all the same is one a
// concurrent create with the key may already have been handed; the key
// hands it to the caller's retry too.
func TestKeyedCreateNotFenced(t *testing.T) {
	t.Parallel()
	env, hole, st := behindBlackhole(t)
	now := time.Now().UTC()
	hole.paused.Store(true)
	err := createWithin(t, st, t.Context(), store.CreateTaskParams{Task: readyTask("t-keyed", now), Now: now,
		IdempotencyKey: "k-stalled", IdempotencyWindow: time.Hour})
	hole.paused.Store(false)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("keyed create with PostgreSQL stalled: %v; want a *store.UnavailableError", err)
	}
	if n, err := env.rdb.Exists(t.Context(), st.k.createFence("t-keyed")).Result(); err != nil || n != 0 {
		t.Fatalf("the keyed create was fenced off: %d, %v", n, err)
	}
}
