package ws

import (
	"encoding/json"
	"net/http"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
)

// request is the part of a request object the first message is read for.
type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// authenticate handles the first message of a connection and reports
// whether it is still to be answered as an ordinary request. An
// rpc.authenticate request is answered here: with authentication on, its
// token sets the caller of the whole connection, and a bad one closes it;
// with authentication off it succeeds and changes nothing. Any other first
// message on a connection that still needs a token gets an error and the
// connection is closed.
func (c *conn) authenticate(msg []byte) (passOn bool) {
	var req request
	isAuth := json.Unmarshal(msg, &req) == nil && req.Method == taskwire.MethodAuthenticate
	if !isAuth {
		if c.authenticated {
			return true
		}
		c.reply(req.ID, nil, unauthorized("send rpc.authenticate {token} as the first message, or an Authorization: Bearer header"))
		c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication required")
		return false
	}
	var p taskwire.AuthenticateParams
	if json.Unmarshal(req.Params, &p) != nil || p.Token == "" {
		c.reply(req.ID, nil, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Invalid params: token is required", Data: map[string]any{"validation": "token: required string"}})
		if !c.authenticated {
			c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication required")
		}
		return false
	}
	if c.h.opts.Authenticate != nil {
		ctx, err := c.h.opts.Authenticate(c.ctx, p.Token)
		if err != nil {
			c.reply(req.ID, nil, unauthorized("invalid token"))
			c.shutAfterQueued(websocket.StatusPolicyViolation, "authentication failed")
			return false
		}
		c.ctx, c.authenticated = ctx, true
	}
	c.reply(req.ID, taskwire.AuthenticateResult{Authenticated: true}, nil)
	return false
}

// reply queues the response to the request id (null when absent): result,
// or e when not nil. A notification (no id) gets no response.
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
	b, err := json.Marshal(resp)
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
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "error": e, "id": nil})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
