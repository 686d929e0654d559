package server

import (
	"net/http"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
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
		ctx := service.WithCaller(r.Context(), service.Caller{Addr: r.RemoteAddr})
		if s.tokens != nil {
			bearer := auth.BearerToken(r.Header.Get("Authorization"))
			p, ok := s.tokens.Authenticate(bearer)
			if !ok {
				s.log.Debug("refused a request without a known token", "addr", r.RemoteAddr, "path", r.URL.Path)
				w.Header().Set("WWW-Authenticate", `Bearer realm="taskwire"`)
				writeError(w, http.StatusUnauthorized, unauthorized(bearer))
				return
			}
			ctx = service.WithPrincipal(r.Context(), p, r.RemoteAddr)
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

// unauthorized is the error of a request without a known token.
func unauthorized(bearer string) *taskwire.Error {
	reason := "a bearer token is required (Authorization: Bearer TOKEN)"
	if bearer != "" {
		reason = "unknown token"
	}
	return &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Unauthorized: " + reason,
		Data: map[string]any{"reason": reason}}
}
