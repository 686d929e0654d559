package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/gcheadroom"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
)

// serveConfig is what the serve flags and TASKWIRE_* variables set.
type serveConfig struct {
	listen        string
	data          string
	redisURL      string
	postgresURL   string
	redisPool     int
	postgresPool  int
	reconcile     time.Duration
	insecure      bool
	tokens        string
	maxBody       int
	maxBatch      int
	rateLimits    map[string]service.Limit
	noRateLimit   bool
	workerTimeout time.Duration
	sweepInterval time.Duration
	eventMaxAge   time.Duration
	eventMax      int
	logFormat     string
	// tokensFromEnv: the tokens file is TASKWIRE_TOKENS's. inlineTokens
	// is TASKWIRE_TOKENS holding the JSON array itself; it or a tokens
	// file turns authentication on.
	tokensFromEnv bool
	inlineTokens  string
	// fromEnv names, by flag name, the variables the values not given as
	// flags came from, for messages.
	fromEnv map[string]string
}

const serveUsage = `Usage: taskwire serve [flags]

Runs the server. With neither --redis nor --postgres it runs embedded on
SQLite in --data. Every flag also reads the environment variable named in
brackets.

Example:
  taskwire serve --listen 127.0.0.1:7700 --rate-limit task.claim=600/1m

Flags:
`

func parseServe(args []string, stdout, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{rateLimits: service.DefaultRateLimits()}
	tokensEnv := os.Getenv("TASKWIRE_TOKENS")
	if inlineTokens(tokensEnv) {
		// Not the default of --tokens, so that --help does not show it.
		c.inlineTokens, tokensEnv = tokensEnv, ""
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	e := &envFlags{fs: fs, vars: map[string]string{}}
	e.string(&c.listen, "listen", "TASKWIRE_LISTEN", "127.0.0.1:7700", "address to listen on")
	e.string(&c.data, "data", "TASKWIRE_DATA", "./taskwire-data", "directory of the embedded SQLite database")
	e.secret(&c.redisURL, "redis", "TASKWIRE_REDIS_URL", "Redis URL, distributed mode, with --postgres")
	e.secret(&c.postgresURL, "postgres", "TASKWIRE_POSTGRES_URL", "PostgreSQL URL, distributed mode, with --redis")
	fs.StringVar(&c.tokens, "tokens", tokensEnv, "`FILE` of tokens: turns authentication on (make entries with taskwire token new) [TASKWIRE_TOKENS: the FILE, or the JSON array itself]")
	e.int(&c.redisPool, "redis-pool-size", "TASKWIRE_REDIS_POOL_SIZE", 0, "distributed mode: Redis connections per process; 0: the URL's pool_size, else 64 (a cluster: go-redis's default per node)")
	e.int(&c.postgresPool, "postgres-max-conns", "TASKWIRE_POSTGRES_MAX_CONNS", 0, "distributed mode: PostgreSQL connections per process; 0: the URL's pool_max_conns, else 32")
	e.duration(&c.reconcile, "reconcile-interval", "TASKWIRE_RECONCILE_INTERVAL", 5*time.Second, "distributed mode: how often Redis is reconciled with PostgreSQL")
	e.bool(&c.insecure, "insecure", "TASKWIRE_INSECURE", "allow a non-loopback --listen without authentication")
	e.bool(&c.noRateLimit, "no-rate-limit", "TASKWIRE_NO_RATE_LIMIT", "turn every rate limit off")
	e.duration(&c.workerTimeout, "worker-timeout", "TASKWIRE_WORKER_TIMEOUT", 30*time.Second, "a worker silent this long goes offline")
	e.duration(&c.sweepInterval, "sweep-interval", "TASKWIRE_SWEEP_INTERVAL", time.Second, "how often silent workers and expired leases are swept")
	e.duration(&c.eventMaxAge, "event-retention", "TASKWIRE_EVENT_RETENTION", 24*time.Hour, "events older than this are dropped from the log")
	e.int(&c.eventMax, "event-max", "TASKWIRE_EVENT_MAX", 1_000_000, "the event log keeps at most this many events")
	e.int(&c.maxBody, "max-body-bytes", "TASKWIRE_MAX_BODY_BYTES", rpc.DefaultMaxBodyBytes, "largest /rpc request body; larger is HTTP 413")
	e.int(&c.maxBatch, "max-batch", "TASKWIRE_MAX_BATCH", rpc.DefaultMaxBatch, "most calls in one JSON-RPC batch")
	e.string(&c.logFormat, "log-format", "TASKWIRE_LOG_FORMAT", "text", "log format: text or json")
	fs.Func("rate-limit", "METHOD=N/DURATION, repeatable, e.g. task.claim=600/1m; N=0 unlimited [TASKWIRE_RATE_LIMIT, comma-separated]", c.addRateLimit)
	// The variable's limits apply beside the flags' (which win for the
	// same method), so they are always checked.
	var envErrs []error
	for _, spec := range strings.Split(os.Getenv("TASKWIRE_RATE_LIMIT"), ",") {
		if spec = strings.TrimSpace(spec); spec != "" {
			if err := c.addRateLimit(spec); err != nil {
				envErrs = append(envErrs, fmt.Errorf("TASKWIRE_RATE_LIMIT: %v", err))
			}
		}
	}
	if err := parseFlags(fs, serveUsage, args, stdout, stderr); err != nil {
		return nil, err
	}
	if err := errors.Join(append(envErrs, e.errs()...)...); err != nil {
		return nil, exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return nil, usageError("serve takes no arguments, got %q", fs.Args())
	}
	c.fromEnv = e.fromEnv()
	c.tokensFromEnv = c.tokens != "" && c.tokens == tokensEnv
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "tokens" {
			// --tokens is a file, and wins over TASKWIRE_TOKENS.
			c.tokensFromEnv, c.inlineTokens = false, ""
		}
	})
	return c, c.check()
}

func (c *serveConfig) addRateLimit(spec string) error {
	method, l, err := service.ParseRateLimit(spec)
	if err != nil {
		return err
	}
	c.rateLimits[method] = l
	return nil
}

// check refuses the combinations SPEC section 8 forbids, and the values
// out of range; its messages name each value as it was given (see name).
func (c *serveConfig) check() error {
	switch {
	case c.listen == "":
		return usageError("%s must not be empty", c.name("listen"))
	case c.data == "":
		return usageError("%s must not be empty (the directory of the embedded SQLite database; default ./taskwire-data)", c.name("data"))
	case c.redisURL == "" && c.postgresURL != "":
		return usageError("%s without --redis: distributed mode needs both (Redis coordinates, PostgreSQL keeps the record); give both, or neither to run embedded on SQLite", c.name("postgres"))
	case c.redisURL != "" && c.postgresURL == "":
		return usageError("%s without --postgres: distributed mode needs both (Redis coordinates, PostgreSQL keeps the record); give both, or neither to run embedded on SQLite", c.name("redis"))
	case c.reconcile < 100*time.Millisecond:
		return usageError("%s must be at least 100ms, got %s", c.name("reconcile-interval"), c.reconcile)
	case c.redisPool < 0:
		return usageError("%s must not be negative, got %d", c.name("redis-pool-size"), c.redisPool)
	case c.postgresPool < 0:
		return usageError("%s must not be negative, got %d", c.name("postgres-max-conns"), c.postgresPool)
	case c.logFormat != "text" && c.logFormat != "json":
		return usageError("%s must be text or json, got %q", c.name("log-format"), c.logFormat)
	case c.workerTimeout < time.Second:
		return usageError("%s must be at least 1s, got %s", c.name("worker-timeout"), c.workerTimeout)
	case c.sweepInterval < 10*time.Millisecond || c.sweepInterval > time.Minute:
		return usageError("%s must be between 10ms and 1m, got %s", c.name("sweep-interval"), c.sweepInterval)
	case c.eventMaxAge < time.Minute:
		return usageError("%s must be at least 1m, got %s", c.name("event-retention"), c.eventMaxAge)
	case c.maxBody < 1<<10:
		return usageError("%s must be at least 1024, got %d", c.name("max-body-bytes"), c.maxBody)
	case c.maxBatch < 1:
		return usageError("%s must be at least 1, got %d", c.name("max-batch"), c.maxBatch)
	case c.eventMax < 1000:
		return usageError("%s must be at least 1000, got %d", c.name("event-max"), c.eventMax)
	case !server.IsLoopback(c.listen) && !c.authOn() && !c.insecure:
		listen := "--listen " + c.listen
		if v, ok := c.fromEnv["listen"]; ok {
			listen = v + "=" + c.listen
		}
		return usageError("%s is not a loopback address and authentication is off: "+
			"give --tokens FILE to require tokens (make them with `taskwire token new`), "+
			"listen on 127.0.0.1 (or ::1), or pass --insecure to expose the server without authentication", listen)
	}
	if c.noRateLimit {
		c.rateLimits = map[string]service.Limit{}
	}
	return nil
}

// name is how the value of the flag named flagName was given: its
// variable's name when it came from there, else the flag (given, or the
// default).
func (c *serveConfig) name(flagName string) string {
	if v, ok := c.fromEnv[flagName]; ok {
		return v
	}
	return "--" + flagName
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, stdout, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(c.logFormat, stderr)
	routeRedisLogs(logger)
	// Fewer collections under load, for at most gcheadroom.Default more
	// memory; GOGC in the environment leaves the collector to it.
	if _, set := os.LookupEnv("GOGC"); !set {
		defer gcheadroom.Keep(gcheadroom.Default)()
	}
	cfg := server.Config{
		DataDir: c.data, RedisURL: c.redisURL, PostgresURL: c.postgresURL,
		RedisPoolSize: c.redisPool, PostgresMaxConns: c.postgresPool, ReconcileInterval: c.reconcile,
		WorkerTimeout: c.workerTimeout, RateLimits: c.rateLimits,
		SweepInterval: c.sweepInterval, EventRetention: c.eventMaxAge, MaxEvents: c.eventMax,
		MaxBodyBytes: int64(c.maxBody), MaxBatch: c.maxBatch,
		Version: buildVersion(), Logger: logger,
	}
	authNote := "auth off"
	if c.authOn() {
		if cfg.Tokens, err = c.loadTokens(); err != nil {
			return err
		}
		authNote = fmt.Sprintf("auth on, tokens: %d", cfg.Tokens.Len())
		// Registered before the server starts, so that no SIGHUP finds
		// the default action (exit).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go reloadOnHangup(ctx, hup, cfg.Tokens, c.inlineTokens != "", logger)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	mode := "embedded, SQLite in " + c.data
	if c.redisURL != "" {
		mode = fmt.Sprintf("distributed, Redis at %s, PostgreSQL at %s", hostOf(c.redisURL), hostOf(c.postgresURL))
	}
	return srv.Serve(ctx, c.listen, func(addr string) {
		fmt.Fprintf(stdout, "taskwire %s listening on http://%s (%s, %s)\n", buildVersion(), addr, mode, authNote)
	})
}

// authOn reports whether tokens are required: a tokens file or inline
// tokens were given.
func (c *serveConfig) authOn() bool { return c.tokens != "" || c.inlineTokens != "" }

// inlineTokens reports whether a value of TASKWIRE_TOKENS is the tokens'
// JSON array itself rather than the path of a tokens file.
func inlineTokens(v string) bool {
	return strings.HasPrefix(strings.TrimSpace(v), "[")
}

// loadTokens reads the tokens c names. Its errors name the entry and
// field at fault, never a token: inline tokens are not quoted, nor is a
// TASKWIRE_TOKENS that names no readable file, as it may well be a token
// (the client's TASKWIRE_TOKEN set under the wrong name).
func (c *serveConfig) loadTokens() (*auth.Tokens, error) {
	if c.inlineTokens != "" {
		tokens, err := auth.Parse([]byte(c.inlineTokens))
		if err != nil {
			return nil, fmt.Errorf("TASKWIRE_TOKENS: %w", err)
		}
		return tokens, nil
	}
	tokens, err := auth.Load(c.tokens)
	var pathErr *os.PathError
	if c.tokensFromEnv && errors.As(err, &pathErr) {
		return nil, fmt.Errorf("TASKWIRE_TOKENS: no tokens file could be read there (%w); "+
			"give the path of a tokens file or, starting with [, the JSON array itself (the value is not shown: it may hold a token)", pathErr.Err)
	}
	return tokens, err
}

// reloadOnHangup reads the tokens file again on every signal of hup until
// ctx ends; connections whose token is unchanged stay open. A file that
// does not load leaves the tokens in use as they were, and the log says
// why. Inline tokens cannot change: a signal leaves them as they are.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, tokens *auth.Tokens, inline bool, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if inline {
				log.Info("tokens not reloaded: they come from TASKWIRE_TOKENS, which a running server cannot read again", "tokens", tokens.Len())
				continue
			}
			if err := tokens.Reload(); err != nil {
				log.Error("tokens not reloaded, the previous tokens stay in use", "err", err)
				continue
			}
			log.Info("tokens reloaded", "tokens", tokens.Len())
		}
	}
}

// hostOf is the host:port of a service URL, without its credentials.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(unparsed URL)"
	}
	return u.Host
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envFlags defines flags on fs that each read a TASKWIRE_* variable, named
// at the end of the flag's usage: a set variable's value is the flag's
// default, used when the flag is not given. A malformed value is kept, and refused by errs only when the
// flag is not given: a value that is not used is not checked either.
type envFlags struct {
	fs   *flag.FlagSet
	vars map[string]string // flag name: its variable
	bad  []badEnv
}

// badEnv is a variable whose value does not parse, by its flag's name.
type badEnv struct {
	flag string
	err  error
}

func (e *envFlags) string(p *string, name, variable, def, usage string) {
	e.vars[name] = variable
	e.fs.StringVar(p, name, env(variable, def), usage+" ["+variable+"]")
}

// secret is string, without a default, for a URL that may hold a
// password: --help shows the variable's value with the password masked.
func (e *envFlags) secret(p *string, name, variable, usage string) {
	e.string(p, name, variable, "", usage)
	f := e.fs.Lookup(name)
	f.DefValue = maskPassword(f.DefValue)
}

// passwordParam is a password=... parameter of a key/value connection
// string (PostgreSQL's).
var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// maskPassword returns s, a Redis or PostgreSQL URL or a PostgreSQL
// key/value connection string, with any password replaced by xxxxx.
func maskPassword(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		s = u.Redacted()
	}
	return passwordParam.ReplaceAllString(s, "${1}xxxxx")
}

func (e *envFlags) duration(p *time.Duration, name, variable string, def time.Duration, usage string) {
	e.vars[name] = variable
	if v, ok := os.LookupEnv(variable); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.bad = append(e.bad, badEnv{name, fmt.Errorf("%s=%q is not a duration (e.g. 30s)", variable, v)})
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, name, def, usage+" ["+variable+"]")
}

func (e *envFlags) int(p *int, name, variable string, def int, usage string) {
	e.vars[name] = variable
	if v, ok := os.LookupEnv(variable); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.bad = append(e.bad, badEnv{name, fmt.Errorf("%s=%q is not a whole number", variable, v)})
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, name, def, usage+" ["+variable+"]")
}

// bool defines a switch, off by default. Its variable turns it on with 1,
// true, yes or on, and leaves it off with 0, false, no, off or an empty
// value.
func (e *envFlags) bool(p *bool, name, variable, usage string) {
	e.vars[name] = variable
	on := false
	switch v := os.Getenv(variable); strings.ToLower(v) {
	case "1", "true", "yes", "on":
		on = true
	case "", "0", "false", "no", "off":
	default:
		e.bad = append(e.bad, badEnv{name, fmt.Errorf("%s=%q is not a switch (1, true, yes, on or 0, false, no, off)", variable, v)})
	}
	e.fs.BoolVar(p, name, on, usage+" ["+variable+"]")
}

// given returns the names of the flags the command line gave.
func (e *envFlags) given() map[string]bool {
	given := map[string]bool{}
	e.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}

// errs returns the errors of the malformed variables whose flags were not
// given, once the flags are parsed.
func (e *envFlags) errs() []error {
	given := e.given()
	var errs []error
	for _, b := range e.bad {
		if !given[b.flag] {
			errs = append(errs, b.err)
		}
	}
	return errs
}

// fromEnv returns, by flag name, the variables whose values were used,
// once the flags are parsed.
func (e *envFlags) fromEnv() map[string]string {
	given := e.given()
	from := map[string]string{}
	for name, variable := range e.vars {
		if _, set := os.LookupEnv(variable); set && !given[name] {
			from[name] = variable
		}
	}
	return from
}
