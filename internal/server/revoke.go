package server

import (
	"context"
	"net/http"
	"sync"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
)

// streams are the HTTP requests open with a token (calls of /rpc, long
// polls among them, and GET /events), ended when a tokens reload revokes
// it.
type streams struct {
	mu   sync.Mutex
	open map[*stream]struct{}
}

type stream struct {
	ctx    context.Context // the caller and its token's fingerprint
	cancel context.CancelCauseFunc
}

// untilRevoked serves h with a request context that ends when a tokens
// reload removes the request's token or gives it another caller, its
// cause the -32002 error saying so (a long poll answers it); without
// tokens it is h.
func (s *Server) untilRevoked(h http.Handler) http.Handler {
	if s.tokens == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer := auth.BearerToken(r.Header.Get("Authorization"))
		ctx, cancel := context.WithCancelCause(context.WithValue(r.Context(), fingerprintKey{}, auth.FingerprintOf(bearer)))
		defer cancel(nil)
		st := &stream{ctx: ctx, cancel: cancel}
		s.streams.add(st)
		defer s.streams.remove(st)
		s.endIfRevoked(st) // a reload since the token was checked
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (ss *streams) add(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.open == nil {
		ss.open = map[*stream]struct{}{}
	}
	ss.open[st] = struct{}{}
}

func (ss *streams) remove(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.open, st)
}

// endRevoked ends every open stream whose token revalidate now refuses
// (called after each tokens reload).
func (s *Server) endRevoked() {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	for st := range s.streams.open {
		s.endIfRevoked(st)
	}
}

// endIfRevoked ends st when revalidate refuses its token now, with the
// -32002 error saying why as its cause.
func (s *Server) endIfRevoked(st *stream) {
	if err := s.revalidate(st.ctx); err != nil {
		st.cancel(&taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Unauthorized: " + err.Error(),
			Data: map[string]any{"reason": err.Error()}})
	}
}
