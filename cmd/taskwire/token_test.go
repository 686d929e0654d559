package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// newToken runs `taskwire token new` with args and returns the token and
// the line for the tokens file.
func newToken(t *testing.T, args ...string) (token, line string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"token", "new"}, args...), &out, &out); err != nil {
		t.Fatalf("token new %q: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("token new printed %q, want 4 lines", out.String())
	}
	return strings.TrimSpace(lines[1]), strings.TrimSpace(lines[3])
}

func TestTokenNewRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"new", "--name", "w1", "--role", "worker"},                    // no worker id
		{"new", "--name", "a", "--role", "root"},                       // unknown role
		{"new", "--role", "admin"},                                     // no name
		{"new", "--name", "a", "--role", "admin", "--worker-id", "w1"}, // worker id on admin
		{"old"},
	} {
		err := run(context.Background(), append([]string{"token"}, args...), io.Discard, io.Discard)
		var exit exitError
		if !errors.As(err, &exit) || exit.code != 2 {
			t.Errorf("token %q: %v, want a usage error", args, err)
		}
	}
}

// TestTokensEndToEnd: tokens made by `token new` let their holders in, a
// server on a file without plaintext tokens refuses others with 401, and
// SIGHUP reloads the file without dropping the connection in use.
func TestTokensEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	adminTok, adminLine := newToken(t, "--name", "ops", "--role", "admin")
	workerTok, workerLine := newToken(t, "--name", "w1", "--role", "worker", "--worker-id", "w1")
	if adminTok == workerTok || len(adminTok) < 40 || strings.Contains(adminLine, adminTok) {
		t.Fatalf("tokens %q %q, line %s: want distinct 256-bit tokens and a line without the token", adminTok, workerTok, adminLine)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, adminLine)
	srv := startChild(t, "--data", t.TempDir(), "--tokens", path)
	ctx := context.Background()

	admin := rpctest.New(srv.URL)
	admin.Token = adminTok
	if err := admin.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "w1"}, nil); err != nil {
		t.Fatal(err)
	}
	worker := rpctest.New(srv.URL)
	worker.Token = workerTok
	if _, status, _ := worker.Post(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"task.list"}`)); status != http.StatusUnauthorized {
		t.Fatalf("a token not in the file: HTTP %d, want 401", status)
	}
	// Add the worker's line and reload: the admin's connection stays up.
	writeTokens(t, path, adminLine, workerLine)
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := worker.Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": "w1"}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new token is still refused 10s after SIGHUP: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken file keeps the tokens in use (that the reload fails and
	// keeps them is pinned in internal/auth; here: the server lives on).
	if err := os.WriteFile(path, []byte(`[{"name":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := worker.Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": "w1"}, nil); err != nil {
		t.Errorf("after a bad reload the tokens in use are refused: %v", err)
	}
	// The worker acts only as itself.
	var rpcErr *taskwire.Error
	err := worker.Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": "w2"}, nil)
	if !errors.As(err, &rpcErr) || rpcErr.Code != taskwire.CodeNotAllowed {
		t.Errorf("worker w1 heartbeating for w2: %v, want -32002", err)
	}
}

func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	content := "[\n" + strings.Join(lines, ",\n") + "\n]\n"
	if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestServeInlineTokens: TASKWIRE_TOKENS may hold the tokens' JSON array
// itself; the server then requires those tokens, and SIGHUP (there is no
// file to read again) keeps them.
func TestServeInlineTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	adminTok, adminLine := newToken(t, "--name", "ops", "--role", "admin")
	t.Setenv("TASKWIRE_TOKENS", "\n  ["+adminLine+`,{"name":"shop","role":"producer","token":"inline-producer-token-0123456789"}]`)
	srv := startChild(t, "--data", t.TempDir())
	ctx := context.Background()
	anonymous := rpctest.New(srv.URL)
	if _, status, _ := anonymous.Post(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"task.list"}`)); status != http.StatusUnauthorized {
		t.Fatalf("no token with inline tokens: HTTP %d, want 401", status)
	}
	admin := rpctest.New(srv.URL)
	admin.Token = adminTok
	producer := rpctest.New(srv.URL)
	producer.Token = "inline-producer-token-0123456789"
	for _, cl := range []*rpctest.Client{admin, producer} {
		if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "t"}, nil); err != nil {
			t.Fatalf("token %.12s...: %v", cl.Token, err)
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the signal be handled
	if err := admin.Call(ctx, taskwire.MethodTaskList, map[string]any{}, nil); err != nil {
		t.Errorf("after SIGHUP the inline tokens are refused: %v", err)
	}
}

// TestServeTokensErrorsHideTokens: a tokens value that does not load
// stops serve with an error naming the entry and field at fault, never
// the tokens themselves, whether it comes inline in TASKWIRE_TOKENS or
// from a file.
func TestServeTokensErrorsHideTokens(t *testing.T) {
	const secret = "do-not-print-me-0123456789"
	bad := `[{"name":"ops","role":"admin","token":"` + secret + `"},{"name":"w1","role":"worker","token":"` + secret + `x"}]`
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  string // TASKWIRE_TOKENS
		args []string
		want string // part of the error
	}{
		// The array itself, as the variable's whole value.
		{"inline", bad, nil, "TASKWIRE_TOKENS: entry 2"},
		// Not an array: taken for a path, which is not shown either.
		{"inline object", `{"name":"ops","role":"admin","token":"` + secret + `"}`, nil, "TASKWIRE_TOKENS: no tokens file"},
		{"a token", secret, nil, "TASKWIRE_TOKENS: no tokens file"},
		{"broken inline JSON", `[{"name":"ops","token":"` + secret, nil, "TASKWIRE_TOKENS: want a JSON array"},
		// --tokens is always a file.
		{"file", "", []string{"--tokens", path}, "entry 2"},
		{"file from the environment", path, nil, "entry 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TASKWIRE_TOKENS", tt.env)
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, tt.args...)
			err := run(context.Background(), args, &stdout, &stderr)
			if err == nil {
				t.Fatal("serve started, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			for _, out := range []string{err.Error(), stdout.String(), stderr.String()} {
				if strings.Contains(out, secret) {
					t.Errorf("the token is printed: %q", out)
				}
			}
		})
	}
	// Nor does the help show inline tokens as the default of --tokens.
	t.Setenv("TASKWIRE_TOKENS", bad)
	var help bytes.Buffer
	if err := run(context.Background(), []string{"serve", "--help"}, &help, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve --help: %v", err)
	}
	if strings.Contains(help.String(), secret) {
		t.Errorf("serve --help prints the inline tokens:\n%s", help.String())
	}
}
