package ws

import (
	"bytes"
	"net/http"

	"github.com/taskwire/taskwire"
)

// refusals is the http.ResponseWriter websocket.Accept is given: an
// upgrade it refuses (not a WebSocket request, another protocol version, a
// page of another origin) is answered with a JSON-RPC error object
// carrying the library's reason, as all bad input is, instead of its
// plain text.
type refusals struct {
	http.ResponseWriter
	status  int  // the refusal's status, 0 until one is written
	refused bool // the refusal is written; what follows is dropped
}

// Unwrap lets the library reach the connection to hijack.
func (w *refusals) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader lets 101 Switching Protocols through and holds a refusal's
// status until its reason is written.
func (w *refusals) WriteHeader(status int) {
	if status == http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.status = status
}

// Write writes the refusal whose reason is b.
func (w *refusals) Write(b []byte) (int, error) {
	if w.status == 0 {
		return w.ResponseWriter.Write(b)
	}
	if w.refused {
		return len(b), nil
	}
	reason := string(bytes.TrimSpace(b))
	e := taskwire.Errorf(taskwire.CodeInvalidRequest, "Invalid Request: %s", reason)
	if w.status == http.StatusForbidden {
		e = &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Not allowed: " + reason,
			Data: map[string]any{"reason": reason}}
	}
	w.Header().Del("X-Content-Type-Options")
	writeHTTPError(w.ResponseWriter, w.status, e)
	w.refused = true
	return len(b), nil
}
