package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/taskwire/taskwire"
)

// Web pages the user visits can send requests to a server on loopback:
// with auth off every caller is an admin, so such a page could create,
// assign or delete tasks. Two checks keep them out, in front of every
// endpoint, before anything runs:
//
//   - A cross-origin browser request of a method that may change state
//     (anything but GET, HEAD and OPTIONS) is refused, as
//     http.CrossOriginProtection tells it from Sec-Fetch-Site, or from
//     Origin against Host for a browser without Sec-Fetch-Site. POST /rpc
//     is the endpoint it guards: a text/plain POST needs no preflight, so
//     CORS alone stops only the page reading the answer, not the call. A
//     request with neither header (curl, the SDK, the CLI) is no
//     browser's and passes, as do the dashboard's own same-origin calls.
//     GET /ws needs no check here: the WebSocket library refuses an
//     upgrade whose Origin is not the Host it was sent to.
//   - DNS rebinding: a page of evil.example whose name is made to resolve
//     to 127.0.0.1 is same-origin with itself, so the origin checks pass
//     it, but its requests name evil.example in Host. On a loopback
//     address with auth off, a request whose Host is not a loopback name
//     or address is refused. With auth on a page has no token to send (a
//     bearer token is no cookie), and a proxy in front may pass its own
//     Host on; on an address that is not loopback (auth on, or
//     --insecure) the names the server is reached by are not known: in
//     both cases Host is not checked (Server.checkHost).
//
// Both refusals are HTTP 403 with a -32002 JSON-RPC error body {reason}:
// 403, not 421 Misdirected Request, because a client may retry a 421 on
// another connection, where it would be refused again; 403 says the
// refusal is final, as for a role that may not call a method.

// protect wraps h in the cross-origin and Host checks.
func (s *Server) protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.checkHost.Load() && !loopbackHost(r.Host) {
			s.log.Debug("refused a request for a host that is not loopback", "addr", r.RemoteAddr, "host", r.Host, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, notAllowed("host "+truncate(r.Host, 256)+" is not a loopback name or address: "+
				"without tokens, a server on loopback answers only localhost, 127.0.0.0/8 and [::1] (DNS rebinding protection)"))
			return
		}
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

// loopbackHost reports whether host, a request's Host (name or address,
// with or without a port), names this machine's loopback: localhost or a
// name under .localhost (RFC 6761, which browsers resolve to loopback
// themselves), an address of 127.0.0.0/8, or ::1. An empty Host (an
// HTTP/1.0 client; no browser sends one) passes: a rebinding page's
// requests always name its host.
func loopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
