package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/service"
)

// guard wraps an endpoint. With tokens configured, a request without a
// known `Authorization: Bearer` token is answered 401 with a JSON-RPC
// error body before anything else runs. When method is not "", the
// endpoint stands for that method: a role that may not call it is
// answered 403, and a caller over its rate limit 429 (see refuse). The caller (its
// principal and address) goes into the request's context, as
// service.WithPrincipal puts it, for the service to check and record.
func (s *Server) guard(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer := auth.BearerToken(r.Header.Get("Authorization"))
		ctx, ok := s.Authenticate(r.Context(), bearer, r.RemoteAddr)
		if !ok {
			s.log.Debug("refused a request without a known token", "addr", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="taskwire"`)
			writeError(w, http.StatusUnauthorized, unauthorized(bearer))
			return
		}
		if method != "" {
			if err := s.svc.Admit(ctx, method); err != nil {
				s.refuse(w, method, err)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuse answers the error of admitting a request to method's endpoint:
// 403 for a role that may not call it, 429 with Retry-After for a rate
// limit, 503 for a limiter that cannot be reached, each with the
// JSON-RPC error the method would answer.
func (s *Server) refuse(w http.ResponseWriter, method string, err error) {
	var e *taskwire.Error
	if !errors.As(err, &e) {
		if e = rpc.Unavailable(err); e == nil {
			s.log.Error("admit", "method", method, "err", err)
			writeError(w, http.StatusInternalServerError, taskwire.Errorf(taskwire.CodeInternalError, "Internal error"))
			return
		}
	}
	status := http.StatusForbidden
	switch e.Code {
	case taskwire.CodeRateLimited:
		status = http.StatusTooManyRequests
	case taskwire.CodeUnavailable:
		status = http.StatusServiceUnavailable
	}
	if data, ok := e.Data.(map[string]any); ok {
		if ms, ok := data["retryAfterMs"].(int64); ok {
			w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
		}
	}
	writeError(w, status, e)
}

// Authenticate returns ctx carrying the caller that token (without the
// "Bearer " scheme) stands for, connected from addr, for the service's
// methods; false when auth is on and the token is unknown (answer 401 or
// close). With auth off every caller is an admin, whatever the token. A
// transport that receives the token in a message (the first message of a
// WebSocket) calls it as the HTTP endpoints do.
func (s *Server) Authenticate(ctx context.Context, token, addr string) (context.Context, bool) {
	if s.tokens == nil {
		return service.WithCaller(ctx, service.Caller{Addr: addr}), true
	}
	p, ok := s.tokens.Authenticate(token)
	if !ok {
		return ctx, false
	}
	return service.WithPrincipal(ctx, p, addr), true
}

// authenticateWebSocket is the WebSocket transport's token check
// (ws.Options.Authenticate): the token of the upgrade request's header or
// of the connection's first message, checked as Authenticate checks it.
// The context keeps the token's fingerprint, not the token, for
// revalidate.
func (s *Server) authenticateWebSocket(ctx context.Context, token string) (context.Context, error) {
	ctx, ok := s.Authenticate(ctx, token, rpc.ClientAddr(ctx))
	if !ok {
		return ctx, unauthorized(token)
	}
	return context.WithValue(ctx, fingerprintKey{}, auth.FingerprintOf(token)), nil
}

type fingerprintKey struct{}

// revalidate is the check, after the tokens were reloaded, of a WebSocket
// (ws.Options.Revalidate) or an event stream (untilRevoked): an error, the
// reason the connection is closed with, when the token of ctx is gone or
// now stands for another caller (name, role or worker).
func (s *Server) revalidate(ctx context.Context) error {
	f, _ := ctx.Value(fingerprintKey{}).(auth.Fingerprint)
	p, ok := s.tokens.Lookup(f)
	if !ok {
		return errors.New("token revoked")
	}
	if c := service.CallerFrom(ctx); c.Name != p.Name || c.Role != p.Role || c.WorkerID != p.WorkerID {
		return errors.New("token changed: it stands for another name, role or worker now; connect again")
	}
	return nil
}

// unauthorized is the error of a request without a known token.
func unauthorized(bearer string) *taskwire.Error {
	reason := "a bearer token is required (Authorization: Bearer TOKEN)"
	if bearer != "" {
		reason = "unknown token"
	}
	return &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Unauthorized: " + reason,
		Data: map[string]any{"reason": reason}}
}
