package ws

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
)

// requireToken answers the first message of a connection that needs a
// token, when it is not rpc.authenticate, and closes the connection.
func (c *conn) requireToken(id json.RawMessage) {
	c.reply(id, nil, unauthorized("send rpc.authenticate {token} as the first message, or an Authorization: Bearer header"))
	c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication required")
}

// authenticate handles the first message of a connection and reports
// whether it is still to be answered as an ordinary request. A valid
// rpc.authenticate request is answered here: with authentication on, its
// token sets the caller of the whole connection, and a bad one closes it;
// with authentication off it succeeds and changes nothing. Any other first
// message on a connection that still needs a token (an invalid request
// object included) gets an error and the connection is closed.
func (c *conn) authenticate(msg []byte) (passOn bool) {
	id, method, params, ok := rpc.Request(msg)
	if !ok || method != taskwire.MethodAuthenticate {
		if c.authenticated {
			return true
		}
		c.requireToken(id)
		return false
	}
	token, e := authToken(params)
	switch {
	case e != nil && c.authenticated:
		// Nothing is at stake: answered as any call, a notification not
		// at all.
		if id != nil {
			c.reply(id, nil, e)
		}
		return false
	case e != nil:
		c.reply(id, nil, e)
		c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication required")
		return false
	}
	if c.h.opts.Authenticate != nil {
		revalidations := c.h.revalidations.Load()
		ctx, err := c.h.opts.Authenticate(c.ctx, token)
		if err != nil {
			c.reply(id, nil, unauthorized("invalid token"))
			c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication failed")
			return false
		}
		c.mu.Lock()
		c.ctx, c.authenticated = ctx, true
		c.mu.Unlock()
		if c.revalidateSince(revalidations) {
			return false
		}
	}
	c.reply(id, taskwire.AuthenticateResult{Authenticated: true}, nil)
	return false
}

// revalidateSince checks the connection as Handler.Revalidate does when
// Revalidate has been called since its count was revalidations (its
// caller was authenticated against tokens that may have changed), and
// reports whether the connection is closed for it.
func (c *conn) revalidateSince(revalidations uint64) bool {
	return c.h.revalidations.Load() != revalidations && c.revalidate()
}

// revalidate closes an authenticated connection with status 1008 when
// Options.Revalidate refuses its caller, and reports whether it did.
func (c *conn) revalidate() bool {
	c.mu.Lock()
	ctx, authenticated := c.ctx, c.authenticated
	c.mu.Unlock()
	if !authenticated || c.h.opts.Revalidate == nil {
		return false
	}
	err := c.h.opts.Revalidate(ctx)
	if err == nil {
		return false
	}
	c.shut(websocket.StatusPolicyViolation, closeReason(err.Error()))
	return true
}

// maxCloseReason is the most bytes a close frame's reason may hold.
const maxCloseReason = 123

// closeReason is reason cut to fit a close frame, on a character
// boundary.
func closeReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	return strings.ToValidUTF8(reason[:maxCloseReason], "")
}

// authParams decodes the params of rpc.authenticate as those of every
// method are decoded.
var authParams = rpc.ParamsDecoder[taskwire.AuthenticateParams](taskwire.MethodAuthenticate)

// authToken decodes the params of rpc.authenticate: {token}, nothing else.
func authToken(params json.RawMessage) (string, *taskwire.Error) {
	p, e := authParams(params)
	if e != nil {
		return "", e
	}
	if p.Token == "" {
		return "", taskwire.InvalidParams("token: must not be empty")
	}
	return p.Token, nil
}

// reply queues the response to the request id: result, or e when not
// nil. A notification (no id) gets no result; an error, with id null, is
// only given to one refused before the connection closes.
func (c *conn) reply(id json.RawMessage, result any, e *taskwire.Error) {
	if id == nil {
		if e == nil {
			return
		}
		id = json.RawMessage("null")
	}
	resp := struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  any             `json:"result,omitempty"`
		Error   *taskwire.Error `json:"error,omitempty"`
		ID      json.RawMessage `json:"id"`
	}{JSONRPC: "2.0", Result: result, Error: e, ID: id}
	b, err := taskwire.MarshalJSON(resp)
	if err != nil {
		c.h.opts.Logger.Error("ws: encode response", "err", err)
		return
	}
	c.send(b)
}

// unauthorized is the error of a missing or bad token.
func unauthorized(reason string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Unauthorized",
		Data: map[string]any{"reason": reason}}
}

// writeHTTPError answers a request that is not upgraded with a JSON-RPC
// error object.
func writeHTTPError(w http.ResponseWriter, status int, e *taskwire.Error) {
	b, _ := taskwire.MarshalJSON(map[string]any{"jsonrpc": "2.0", "error": e, "id": nil})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
