package server

import (
	"net/http"

	"github.com/taskwire/taskwire"
)

// Web pages the user visits can send requests to a server on loopback:
// with auth off every caller is an admin, so such a page could create,
// assign or delete tasks. A cross-origin browser request of a method that
// may change state (anything but GET, HEAD and OPTIONS) is refused, in
// front of every endpoint and before anything runs, as
// http.CrossOriginProtection tells it from Sec-Fetch-Site, or from Origin
// against Host for a browser without Sec-Fetch-Site. POST /rpc is the
// endpoint it guards: a text/plain POST needs no preflight, so CORS alone
// stops only the page reading the answer, not the call. A request with
// neither header (curl, the SDK, the CLI) is no browser's and passes, as
// do the dashboard's own same-origin calls. GET /ws needs no check here:
// the WebSocket library refuses an upgrade whose Origin is not the Host
// it was sent to.
//
// The refusal is HTTP 403 with a -32002 JSON-RPC error body {reason}, as
// for a role that may not call a method.

// protect wraps h in the cross-origin check.
func (s *Server) protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			origin := r.Header.Get("Origin")
			s.log.Debug("refused a cross-origin request", "addr", r.RemoteAddr, "origin", origin, "path", r.URL.Path)
			from := "another origin"
			if origin != "" {
				from = truncate(origin, 256)
			}
			writeError(w, http.StatusForbidden, notAllowed("cross-origin request refused: a page of "+from+
				" may not call this server (Sec-Fetch-Site or Origin shows a browser sent it from another origin)"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// notAllowed is the -32002 error of a refused request.
func notAllowed(reason string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Not allowed: " + reason,
		Data: map[string]any{"reason": reason}}
}
