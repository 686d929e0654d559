package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/service"
)

func TestParseServeRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // part of the error
	}{
		// Only one of the two distributed backends.
		{"redis without postgres", []string{"--redis", "redis://127.0.0.1:6379"}, "--redis without --postgres: distributed mode needs both"},
		{"postgres without redis", []string{"--postgres", "postgres://x"}, "--postgres without --redis: distributed mode needs both"},
		// A non-loopback address needs --tokens (or --insecure).
		{"public address", []string{"--listen", "0.0.0.0:7700"}, "give --tokens FILE"},
		{"all interfaces", []string{"--listen", ":7700"}, "not a loopback address"},
		{"bad rate limit", []string{"--rate-limit", "task.claim=lots"}, "METHOD=N/DURATION"},
		{"rate limit of no method", []string{"--rate-limit", "task.claimm=10/1m"}, "no method task.claimm can be limited (methods: events.subscribe, system.health,"},
		{"bad log format", []string{"--log-format", "xml"}, "text or json"},
		{"tiny body limit", []string{"--max-body-bytes", "10"}, "--max-body-bytes must be at least 1024"},
		{"no batch", []string{"--max-batch", "0"}, "--max-batch must be at least 1"},
		{"stray argument", []string{"now"}, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServe(tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseServe(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseServeFlagsAndEnvironment(t *testing.T) {
	t.Setenv("TASKWIRE_DATA", "/tmp/from-env")
	t.Setenv("TASKWIRE_RATE_LIMIT", "task.list=5/1s")
	t.Setenv("TASKWIRE_WORKER_TIMEOUT", "45s")
	c, err := parseServe([]string{"--listen", "[::1]:9000", "--rate-limit", "task.claim=600/1m", "--rate-limit", "task.update=0/1m"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "[::1]:9000" || c.data != "/tmp/from-env" || c.workerTimeout != 45*time.Second {
		t.Errorf("got listen %q data %q timeout %s", c.listen, c.data, c.workerTimeout)
	}
	want := map[string]service.Limit{
		"task.claim":    {N: 600, Per: time.Minute},
		"task.update":   {N: 0, Per: time.Minute},
		"task.list":     {N: 5, Per: time.Second},
		"task.complete": {N: 100, Per: time.Minute},
	}
	for m, l := range want {
		if c.rateLimits[m] != l {
			t.Errorf("rate limit of %s = %v, want %v", m, c.rateLimits[m], l)
		}
	}
	if _, err := parseServe([]string{"--listen", "0.0.0.0:1", "--tokens", "/etc/taskwire/tokens.json"}, io.Discard, io.Discard); err != nil {
		t.Errorf("a public address with --tokens: %v", err)
	}
	t.Setenv("TASKWIRE_TOKENS", "/etc/taskwire/tokens.json")
	if c, err := parseServe([]string{"--listen", "0.0.0.0:1"}, io.Discard, io.Discard); err != nil || c.tokens != "/etc/taskwire/tokens.json" {
		t.Errorf("a public address with TASKWIRE_TOKENS: %+v, %v", c, err)
	}
	c, err = parseServe([]string{"--no-rate-limit", "--listen", "0.0.0.0:1", "--insecure"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.rateLimits) != 0 {
		t.Errorf("--no-rate-limit left %v", c.rateLimits)
	}
}

// TestSIGTERMFinishesInFlightAndExitsZero sends SIGTERM while a long-poll
// claim waits: the claim is answered, and the process exits 0.
func TestSIGTERMFinishesInFlightAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	srv := startChild(t, "--data", t.TempDir())
	cl := rpctest.New(srv.URL)
	ctx := context.Background()
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "w1"}, nil); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		var r taskwire.ClaimResult
		answered <- cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 30000}, &r)
	}()
	time.Sleep(300 * time.Millisecond) // let the claim start waiting
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("in-flight claim: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight long poll was not answered within 10s of SIGTERM")
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit within 10s of SIGTERM")
	}
}

// A malformed variable stops serve with a message naming it, and does not
// linger into a later parse.
func TestParseServeMalformedEnvironment(t *testing.T) {
	t.Setenv("TASKWIRE_WORKER_TIMEOUT", "soon")
	if _, err := parseServe(nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "TASKWIRE_WORKER_TIMEOUT") {
		t.Fatalf("parseServe with TASKWIRE_WORKER_TIMEOUT=soon: %v, want an error naming it", err)
	}
	t.Setenv("TASKWIRE_WORKER_TIMEOUT", "20s")
	if c, err := parseServe(nil, io.Discard, io.Discard); err != nil || c.workerTimeout != 20*time.Second {
		t.Fatalf("parseServe after fixing the variable: %+v, %v", c, err)
	}
}

// A switch variable holding neither a true nor a false word stops serve
// too, rather than silently leaving the switch off.
func TestParseServeMalformedSwitch(t *testing.T) {
	for _, name := range []string{"TASKWIRE_NO_RATE_LIMIT", "TASKWIRE_INSECURE"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "maybe")
			if _, err := parseServe(nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("parseServe with %s=maybe: %v, want an error naming it", name, err)
			}
			for v, want := range map[string]bool{"1": true, "TRUE": true, "on": true, "0": false, "off": false, "": false} {
				t.Setenv(name, v)
				c, err := parseServe(nil, io.Discard, io.Discard)
				if err != nil {
					t.Fatalf("parseServe with %s=%q: %v", name, v, err)
				}
				if got := c.noRateLimit || c.insecure; got != want {
					t.Errorf("%s=%q: switch %v, want %v", name, v, got, want)
				}
			}
		})
	}
}

// TestServeAndTokenHelp: --help of serve and token new prints the usage on
// stdout and exits 0, as every client command's does, and a pool flag's
// help says what its default of 0 means.
func TestServeAndTokenHelp(t *testing.T) {
	t.Parallel()
	r := runTaskwire(t, "serve", "--help").want(t, exitOK)
	for _, want := range []string{"Usage: taskwire serve", "Example:", "-worker-timeout",
		"the URL's pool_size, else 64", "the URL's pool_max_conns, else 32"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("serve --help wrote to stderr:\n%s", r.stderr)
	}
	for _, args := range [][]string{{"token", "--help"}, {"token", "new", "--help"}} {
		r := runTaskwire(t, args...).want(t, exitOK)
		if !strings.Contains(r.stdout, "Usage: taskwire token new") || !strings.Contains(r.stdout, "-worker-id") || r.stderr != "" {
			t.Errorf("%q: stdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
		}
	}
	r = runTaskwire(t, "serve", "--bogus").want(t, exitUsage)
	if !strings.Contains(r.stderr, "Usage: taskwire serve") || r.stdout != "" {
		t.Errorf("serve --bogus: stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// TestServeGCHeadroom: serve lets a small heap grow by gcheadroom.Default between
// collections (a GC percent above 100, read from the server's /metrics),
// unless GOGC in its environment says otherwise.
func TestServeGCHeadroom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	percent := func() int {
		srv := startChild(t, "--data", t.TempDir())
		for line := range strings.Lines(string(getOK(t, srv.URL+"/metrics"))) {
			if v, ok := strings.CutPrefix(line, "go_gc_gogc_percent "); ok {
				p, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("go_gc_gogc_percent %q: %v", v, err)
				}
				return p
			}
		}
		t.Fatal("the server's /metrics has no go_gc_gogc_percent")
		return 0
	}
	if p := percent(); p <= 100 {
		t.Errorf("GC percent of a server just started = %d, want above 100 (its heap is far below the headroom)", p)
	}
	t.Setenv("GOGC", "100")
	if p := percent(); p != 100 {
		t.Errorf("GC percent of a server started with GOGC=100 = %d, want 100", p)
	}
}

// TestServeRefusesADataDirectoryInUse starts a second embedded server on
// the data directory of a running one: it exits 1 (another failure, as
// for a --listen address in use) with a message naming the lock file, and
// never says it listens; the first goes on serving. Once the first is
// killed with SIGKILL, a server starts on the directory again.
func TestServeRefusesADataDirectoryInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	first := startChild(t, "--data", dir)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, os.Args[0], "serve", "--listen", "127.0.0.1:0", "--data", dir)
	second.Env = append(os.Environ(), childEnv+"=1")
	var stdout, stderr bytes.Buffer
	second.Stdout, second.Stderr = &stdout, &stderr
	err := second.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitServer {
		t.Fatalf("second serve on the same --data: %v, want exit status %d\nstdout: %s\nstderr: %s", err, exitServer, &stdout, &stderr)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(resolved, "taskwire.db-lock")
	if msg := stderr.String(); !strings.Contains(msg, "another taskwire process uses it") || !strings.Contains(msg, lock) {
		t.Errorf("second serve's stderr:\n%s\nwant it to say another taskwire process uses the database and name %s", msg, lock)
	}
	if strings.Contains(stdout.String(), "listening") {
		t.Errorf("second serve said it listens:\n%s", &stdout)
	}
	getOK(t, first.URL+"/readyz")
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	getOK(t, startChild(t, "--data", dir).URL+"/readyz")
}

// A flag given wins over its variable, and the variable, not used, is not
// checked either: a malformed or out-of-range value in the environment
// does not stop a serve whose flag says otherwise. Each variable alone is
// refused, naming it, so that each case checks something.
func TestParseServeFlagWinsOverItsVariable(t *testing.T) {
	tests := []struct {
		env, value string
		args       []string
		got        func(*serveConfig) any
		want       any
	}{
		{"TASKWIRE_WORKER_TIMEOUT", "abc", []string{"--worker-timeout", "5s"}, func(c *serveConfig) any { return c.workerTimeout }, 5 * time.Second},
		{"TASKWIRE_WORKER_TIMEOUT", "10ms", []string{"--worker-timeout", "5s"}, func(c *serveConfig) any { return c.workerTimeout }, 5 * time.Second},
		{"TASKWIRE_SWEEP_INTERVAL", "often", []string{"--sweep-interval", "2s"}, func(c *serveConfig) any { return c.sweepInterval }, 2 * time.Second},
		{"TASKWIRE_EVENT_RETENTION", "forever", []string{"--event-retention", "1h"}, func(c *serveConfig) any { return c.eventMaxAge }, time.Hour},
		{"TASKWIRE_RECONCILE_INTERVAL", "", []string{"--reconcile-interval", "1s"}, func(c *serveConfig) any { return c.reconcile }, time.Second},
		{"TASKWIRE_EVENT_MAX", "lots", []string{"--event-max", "5000"}, func(c *serveConfig) any { return c.eventMax }, 5000},
		{"TASKWIRE_MAX_BODY_BYTES", "1GiB", []string{"--max-body-bytes", "2048"}, func(c *serveConfig) any { return c.maxBody }, 2048},
		{"TASKWIRE_MAX_BATCH", "none", []string{"--max-batch", "10"}, func(c *serveConfig) any { return c.maxBatch }, 10},
		{"TASKWIRE_REDIS_POOL_SIZE", "big", []string{"--redis-pool-size", "3"}, func(c *serveConfig) any { return c.redisPool }, 3},
		{"TASKWIRE_POSTGRES_MAX_CONNS", "many", []string{"--postgres-max-conns", "3"}, func(c *serveConfig) any { return c.postgresPool }, 3},
		{"TASKWIRE_POSTGRES_MAX_CONNS", "-1", []string{"--postgres-max-conns", "3"}, func(c *serveConfig) any { return c.postgresPool }, 3},
		{"TASKWIRE_INSECURE", "maybe", []string{"--insecure=false"}, func(c *serveConfig) any { return c.insecure }, false},
		{"TASKWIRE_NO_RATE_LIMIT", "maybe", []string{"--no-rate-limit"}, func(c *serveConfig) any { return c.noRateLimit }, true},
		{"TASKWIRE_LOG_FORMAT", "xml", []string{"--log-format", "json"}, func(c *serveConfig) any { return c.logFormat }, "json"},
		{"TASKWIRE_LISTEN", "0.0.0.0:7700", []string{"--listen", "127.0.0.1:7701"}, func(c *serveConfig) any { return c.listen }, "127.0.0.1:7701"},
		{"TASKWIRE_DATA", "", []string{"--data", "/tmp/from-flag"}, func(c *serveConfig) any { return c.data }, "/tmp/from-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			if _, err := parseServe(nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tt.env) {
				t.Fatalf("%s=%q alone: %v, want an error naming it", tt.env, tt.value, err)
			}
			c, err := parseServe(tt.args, io.Discard, io.Discard)
			if err != nil {
				t.Fatalf("%s=%q with %q: %v, want the flag to win", tt.env, tt.value, tt.args, err)
			}
			if got := tt.got(c); got != tt.want {
				t.Errorf("%s=%q with %q: got %v, want %v", tt.env, tt.value, tt.args, got, tt.want)
			}
		})
	}
}

// An empty value is refused (exit 2) where the setting needs one, from
// the flag or its variable alike, with a message naming where it came
// from; where an empty value means off (no tokens, embedded mode, the
// default rate limits), it is accepted as off.
func TestParseServeEmptyValues(t *testing.T) {
	refused := []struct {
		env  string // the variable set empty, or none
		args []string
		want string // part of the error
	}{
		{"", []string{"--data", ""}, "--data must not be empty"},
		{"TASKWIRE_DATA", nil, "TASKWIRE_DATA must not be empty"},
		{"", []string{"--listen", ""}, "--listen must not be empty"},
		{"TASKWIRE_LISTEN", nil, "TASKWIRE_LISTEN must not be empty"},
		{"TASKWIRE_LOG_FORMAT", nil, "TASKWIRE_LOG_FORMAT must be text or json"},
		{"TASKWIRE_WORKER_TIMEOUT", nil, "TASKWIRE_WORKER_TIMEOUT"},
	}
	for _, tt := range refused {
		t.Run(fmt.Sprintf("%s%q", tt.env, tt.args), func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(tt.env, "")
			}
			_, err := parseServe(tt.args, io.Discard, io.Discard)
			var exit exitError
			if !errors.As(err, &exit) || exit.code != exitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseServe: %v, want exit %d with an error containing %q", err, exitUsage, tt.want)
			}
		})
	}
	for _, env := range []string{"TASKWIRE_TOKENS", "TASKWIRE_REDIS_URL", "TASKWIRE_POSTGRES_URL", "TASKWIRE_RATE_LIMIT", "TASKWIRE_INSECURE", "TASKWIRE_NO_RATE_LIMIT"} {
		t.Setenv(env, "")
	}
	c, err := parseServe(nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("empty variables that mean off: %v", err)
	}
	if c.authOn() || c.redisURL != "" || c.postgresURL != "" || c.insecure || c.noRateLimit || len(c.rateLimits) == 0 {
		t.Errorf("empty variables that mean off: %+v", c)
	}
}

// A value refused after parsing is reported under the name it was given
// by: the variable when it came from the environment, the flag when from
// the command line.
func TestParseServeNamesTheSourceOfARefusedValue(t *testing.T) {
	tests := []struct {
		env, value string
		args       []string
		want       string // part of the error
		notWant    string
	}{
		{"TASKWIRE_LISTEN", "0.0.0.0:7700", nil, "TASKWIRE_LISTEN=0.0.0.0:7700 is not a loopback address", "--listen"},
		{"", "", []string{"--listen", "0.0.0.0:7700"}, "--listen 0.0.0.0:7700 is not a loopback address", "TASKWIRE_LISTEN"},
		{"TASKWIRE_WORKER_TIMEOUT", "10ms", nil, "TASKWIRE_WORKER_TIMEOUT must be at least 1s, got 10ms", "--worker-timeout"},
		{"TASKWIRE_SWEEP_INTERVAL", "1h", nil, "TASKWIRE_SWEEP_INTERVAL must be between 10ms and 1m", "--sweep-interval"},
		{"TASKWIRE_EVENT_RETENTION", "1s", nil, "TASKWIRE_EVENT_RETENTION must be at least 1m", "--event-retention"},
		{"TASKWIRE_RECONCILE_INTERVAL", "1ms", nil, "TASKWIRE_RECONCILE_INTERVAL must be at least 100ms", "--reconcile-interval"},
		{"TASKWIRE_EVENT_MAX", "10", nil, "TASKWIRE_EVENT_MAX must be at least 1000", "--event-max"},
		{"TASKWIRE_MAX_BODY_BYTES", "10", nil, "TASKWIRE_MAX_BODY_BYTES must be at least 1024", "--max-body-bytes"},
		{"TASKWIRE_MAX_BATCH", "0", nil, "TASKWIRE_MAX_BATCH must be at least 1", "--max-batch"},
		{"TASKWIRE_LOG_FORMAT", "xml", nil, "TASKWIRE_LOG_FORMAT must be text or json", "--log-format"},
		{"TASKWIRE_REDIS_URL", "redis://127.0.0.1:6379", nil, "TASKWIRE_REDIS_URL without --postgres", "--redis "},
		{"TASKWIRE_POSTGRES_URL", "postgres://x", nil, "TASKWIRE_POSTGRES_URL without --redis", "--postgres "},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%s%q", tt.env, tt.value, tt.args), func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(tt.env, tt.value)
			}
			_, err := parseServe(tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.notWant) {
				t.Fatalf("parseServe: %v, want an error containing %q and not %q", err, tt.want, tt.notWant)
			}
		})
	}
}

// TestServeHelpMasksPasswords: serve --help shows the Redis and PostgreSQL
// URLs taken from the environment as defaults, never their passwords.
func TestServeHelpMasksPasswords(t *testing.T) {
	t.Setenv("TASKWIRE_REDIS_URL", "redis://:redis-s3cret@cache:6379/0")
	t.Setenv("TASKWIRE_POSTGRES_URL", "postgres://app:pg-s3cret@db/tasks?sslmode=disable")
	r := runTaskwire(t, "serve", "--help").want(t, exitOK)
	for _, secret := range []string{"redis-s3cret", "pg-s3cret"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("serve --help shows the password %q:\n%s", secret, r.stdout)
		}
	}
	for _, want := range []string{"redis://:xxxxx@cache:6379/0", "postgres://app:xxxxx@db/tasks?sslmode=disable"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks the masked URL %q:\n%s", want, r.stdout)
		}
	}
}

func TestMaskPassword(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                      "",
		"redis://cache:6379":                    "redis://cache:6379",
		"redis://:pw@cache:6379":                "redis://:xxxxx@cache:6379",
		"postgres://u:pw@db/x?sslmode=require":  "postgres://u:xxxxx@db/x?sslmode=require",
		"postgres://u@db/x?password=pw":         "postgres://u@db/x?password=xxxxx",
		"host=db user=u password=pw dbname=x":   "host=db user=u password=xxxxx dbname=x",
		"host=db password = 'p w\\'x' dbname=x": "host=db password = xxxxx dbname=x",
	} {
		if got := maskPassword(in); got != want {
			t.Errorf("maskPassword(%q) = %q, want %q", in, got, want)
		}
	}
}
