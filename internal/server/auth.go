package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/service"
)

// guard wraps an endpoint. With tokens configured, a request without a
// known `Authorization: Bearer` token is answered 401 with a JSON-RPC
// error body before anything else runs, and one whose role may not call
// method (when method is not "") is answered 403. The caller (its
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
			if err := s.svc.Authorize(ctx, method); err != nil {
				writeError(w, http.StatusForbidden, err.(*taskwire.Error))
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
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
