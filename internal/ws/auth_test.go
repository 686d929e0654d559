package ws_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/ws"
)

// goodToken is the only token the test hook accepts.
const goodToken = "s3cret"

type callerKey struct{}

// checkToken stands in for the token store: it is the hook's contract,
// a token in, the caller's context out.
func checkToken(ctx context.Context, token string) (context.Context, error) {
	if token != goodToken {
		return nil, errors.New("unknown token")
	}
	return context.WithValue(ctx, callerKey{}, "admin"), nil
}

func authOn() ws.Options { return ws.Options{Authenticate: checkToken} }

// With the hook set, a good bearer header is accepted at upgrade (the
// scheme's case does not matter, as on every HTTP endpoint) and a bad one
// is HTTP 401 before any upgrade.
func TestAuthHeader(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(authOn()))
	cl := dial(t, b, http.Header{"Authorization": {"Bearer " + goodToken}})
	call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)
	cl.subscribe(map[string]any{})
	for _, h := range []string{"bearer " + goodToken, "BEARER  " + goodToken} {
		_, resp, err := websocket.Dial(context.Background(), wsURL(b),
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {h}}})
		if err != nil {
			t.Errorf("Authorization %q: %v, %v; want an upgrade", h, err, resp)
		}
	}

	for _, h := range []string{"Bearer wrong", "Basic czNjcmV0", "Bearer"} {
		_, resp, err := websocket.Dial(context.Background(), wsURL(b),
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {h}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %v, %v; want HTTP 401", h, err, resp)
		}
	}
}

// Without a header, the first message must be rpc.authenticate with a
// good token; anything else gets an error and the connection is closed.
func TestAuthFirstMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(authOn()))

	ok := dial(t, b, nil)
	if got := call[taskwire.AuthenticateResult](ok, taskwire.MethodAuthenticate, map[string]any{"token": goodToken}); !got.Authenticated {
		t.Errorf("rpc.authenticate = %+v", got)
	}
	call[taskwire.Task](ok, taskwire.MethodTaskCreate, map[string]any{"text": "authenticated"})

	for _, tc := range []struct {
		name, first string
		code        taskwire.Code
		reason      string
	}{
		{"a call first", `{"jsonrpc":"2.0","id":1,"method":"system.health"}`, taskwire.CodeNotAllowed, "authentication required"},
		{"a bad token", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"nope"}}`, taskwire.CodeNotAllowed, "authentication failed"},
		{"no token", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{}}`, taskwire.CodeInvalidParams, "authentication required"},
		{"not JSON", `{"jsonrpc"`, taskwire.CodeNotAllowed, "authentication required"},
		{"a batch", `[{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"s3cret"}}]`, taskwire.CodeNotAllowed, "authentication required"},
		// rpc.authenticate is a request like any other: JSON-RPC 2.0 to the letter.
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"rpc.authenticate","params":{"token":"s3cret"}}`, taskwire.CodeNotAllowed, "authentication required"},
		{"no jsonrpc", `{"id":1,"method":"rpc.authenticate","params":{"token":"s3cret"}}`, taskwire.CodeNotAllowed, "authentication required"},
		{"an object id", `{"jsonrpc":"2.0","id":{"n":1},"method":"rpc.authenticate","params":{"token":"s3cret"}}`, taskwire.CodeNotAllowed, "authentication required"},
		{"an unknown member", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"s3cret"},"auth":1}`, taskwire.CodeNotAllowed, "authentication required"},
		{"an unknown param", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"s3cret","role":"admin"}}`, taskwire.CodeInvalidParams, "authentication required"},
		// Its params are checked as every method's: exact names, each once.
		{"the token twice", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"nope","token":"s3cret"}}`, taskwire.CodeInvalidParams, "authentication required"},
		{"a param name in capitals", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"TOKEN":"s3cret"}}`, taskwire.CodeInvalidParams, "authentication required"},
		{"positional params", `{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":["s3cret"]}`, taskwire.CodeInvalidParams, "authentication required"},
	} {
		cl := dial(t, b, nil)
		cl.send(tc.first)
		m := cl.next(cl.resps)
		if m.Error == nil || m.Error.Code != tc.code {
			t.Errorf("%s: got %s, want error %d", tc.name, m.raw, tc.code)
		}
		cl.wantClose(websocket.StatusPolicyViolation, tc.reason)
	}
	if n := call[taskwire.ListResult](ok, taskwire.MethodTaskList, map[string]any{}).TotalCount; n != 1 {
		t.Errorf("%d tasks, want only the authenticated one", n)
	}
}

// A connection that needs a token reads its first message only up to
// 64 KiB, so that a caller not yet known takes nothing from the memory
// budget of large messages: a larger one is refused and the connection
// closed, even rpc.authenticate with a good token.
func TestAuthFirstMessageTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(authOn()))
	cl := dial(t, b, nil)
	cl.send(`{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"` + goodToken + `"}` +
		strings.Repeat(" ", 64<<10) + `}`)
	m := cl.next(cl.resps)
	if m.Error == nil || m.Error.Code != taskwire.CodeNotAllowed {
		t.Errorf("got %.200s, want error %d", m.raw, taskwire.CodeNotAllowed)
	}
	cl.wantClose(websocket.StatusPolicyViolation, "authentication required")

	// Up to the bound, the same message authenticates.
	ok := dial(t, b, nil)
	ok.send(`{"jsonrpc":"2.0","id":1,"method":"rpc.authenticate","params":{"token":"` + goodToken + `"}` +
		strings.Repeat(" ", 60<<10) + `}`)
	if got := decode[taskwire.AuthenticateResult](t, ok.response("1")); !got.Authenticated {
		t.Errorf("rpc.authenticate under the bound = %+v", got)
	}
}

// A connection that needs a token and sends no first message is closed
// once AuthTimeout has passed, so clients without a token cannot hold
// connections open; one authenticated by its header may stay idle.
func TestAuthTimeout(t *testing.T) {
	t.Parallel()
	opts := authOn()
	opts.AuthTimeout = 100 * time.Millisecond
	b := setup(t, wsOptions(opts))
	header := dial(t, b, http.Header{"Authorization": {"Bearer " + goodToken}})
	silent := dial(t, b, nil)
	silent.wantClose(websocket.StatusPolicyViolation, "authentication timed out")
	call[taskwire.HealthResult](header, taskwire.MethodSystemHealth, nil)
}

// With auth off rpc.authenticate succeeds and changes nothing, so a
// client may always send its token first.
func TestAuthOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	if got := call[taskwire.AuthenticateResult](cl, taskwire.MethodAuthenticate, map[string]any{"token": "anything"}); !got.Authenticated {
		t.Errorf("rpc.authenticate = %+v", got)
	}
	call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)

	// An invalid request object is -32600 whatever its method.
	bad := dial(t, b, nil)
	bad.send(`{"jsonrpc":"1.0","id":7,"method":"rpc.authenticate","params":{"token":"anything"}}`)
	if m := bad.next(bad.resps); m.Error == nil || m.Error.Code != taskwire.CodeInvalidRequest {
		t.Errorf("jsonrpc 1.0: got %s, want error %d", m.raw, taskwire.CodeInvalidRequest)
	}

	// A notification gets no response, bad params or not: the first
	// response on the connection is that of the call after it.
	quiet := dial(t, b, nil)
	quiet.send(`{"jsonrpc":"2.0","method":"rpc.authenticate","params":{}}`)
	health := quiet.request(taskwire.MethodSystemHealth, nil)
	if m := quiet.next(quiet.resps); string(m.ID) != health {
		t.Errorf("first response %s, want that of system.health (id %s)", m.raw, health)
	}
}

// A page of another origin cannot open a WebSocket, so another site cannot
// act with a dashboard user's credentials.
func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, resp, err := websocket.Dial(context.Background(), wsURL(b),
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://elsewhere.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin dial: %v, %v; want HTTP 403", err, resp)
	}
	same := dial(t, b, http.Header{"Origin": {b.url}})
	call[taskwire.HealthResult](same, taskwire.MethodSystemHealth, nil)
}

// tokenStore is a token store that can change while connections are open:
// token to caller.
type tokenStore struct {
	mu      sync.Mutex
	callers map[string]string
}

// options are the hooks over s: Authenticate puts the token in the
// context (only this test store may), Revalidate looks it up again.
func (s *tokenStore) options() ws.Options {
	return ws.Options{
		Authenticate: func(ctx context.Context, token string) (context.Context, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			caller, ok := s.callers[token]
			if !ok {
				return nil, errors.New("unknown token")
			}
			return context.WithValue(context.WithValue(ctx, callerKey{}, caller), tokenKey{}, token), nil
		},
		Revalidate: func(ctx context.Context) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch caller, ok := s.callers[ctx.Value(tokenKey{}).(string)]; {
			case !ok:
				return errors.New("token revoked")
			case caller != ctx.Value(callerKey{}):
				return errors.New("token changed")
			}
			return nil
		},
	}
}

type tokenKey struct{}

// After the tokens change, Revalidate closes with status 1008 and the
// hook's reason every connection whose token the hook now refuses, its
// subscriptions with it, however it authenticated; the others go on
// calling and receiving events.
func TestRevalidate(t *testing.T) {
	t.Parallel()
	store := &tokenStore{callers: map[string]string{
		"kept": "admin", "removed": "admin", "removed-first": "admin", "changed": "admin",
	}}
	b := setup(t, wsOptions(store.options()))
	open := func(token string, header bool) *client {
		var cl *client
		if header {
			cl = dial(t, b, http.Header{"Authorization": {"Bearer " + token}})
		} else {
			cl = dial(t, b, nil)
			call[taskwire.AuthenticateResult](cl, taskwire.MethodAuthenticate, map[string]any{"token": token})
		}
		cl.subscribe(map[string]any{})
		return cl
	}
	kept, keptFirst := open("kept", true), open("kept", false)
	removed, removedFirst, changed := open("removed", true), open("removed-first", false), open("changed", true)
	// A connection still to send its token is left to do so.
	pending := dial(t, b, nil)

	store.mu.Lock()
	delete(store.callers, "removed")
	delete(store.callers, "removed-first")
	store.callers["changed"] = "producer"
	store.mu.Unlock()
	b.srv.WebSocket().Revalidate()

	removed.wantClose(websocket.StatusPolicyViolation, "token revoked")
	removedFirst.wantClose(websocket.StatusPolicyViolation, "token revoked")
	changed.wantClose(websocket.StatusPolicyViolation, "token changed")
	task := createTask(t, b, "after the change")
	for _, cl := range []*client{kept, keptFirst} {
		if got := cl.event(); got.Event.Type != taskwire.EventTaskCreated || !strings.Contains(string(got.Event.Payload), task.ID) {
			t.Errorf("kept token: event %+v, want task.created of %s", got, task.ID)
		}
		call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)
	}
	call[taskwire.AuthenticateResult](pending, taskwire.MethodAuthenticate, map[string]any{"token": "kept"})
	call[taskwire.HealthResult](pending, taskwire.MethodSystemHealth, nil)
}
