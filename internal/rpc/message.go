package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
)

// WithClientAddr returns ctx carrying the client's network address, which
// ClientAddr reads. ServeHTTP sets it from the request; another transport
// (the WebSocket one) sets it once per connection.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// Answer answers one JSON-RPC message exactly as ServeHTTP answers a POST
// body with it: a request object or a batch, with the same validation,
// errors, limits and batch rules. It returns the response message in
// parts, to be sent one after the other as one message (a large task
// result is a part of its own, not copied), or nil when there is none (a
// notification, or a batch of them only: where HTTP answers 204). ctx
// should carry the client address (WithClientAddr). The caller runs
// release once the response is written or dropped (see Hold); release is
// never nil.
func (s *Server) Answer(ctx context.Context, msg []byte) (parts [][]byte, release func()) {
	ctx, release = withHolds(ctx)
	return s.handle(ctx, msg), release
}

// Request reads msg as one JSON-RPC request object, checked as Answer
// checks one: its id (nil for a notification), method and raw params (nil
// when absent). ok is false when msg is not JSON, is a batch, or is not a
// valid request object; Answer gives such a message its error.
func Request(msg []byte) (id json.RawMessage, method string, params json.RawMessage, ok bool) {
	if !json.Valid(msg) {
		return nil, "", nil, false
	}
	req, err := parseRequest(msg[skipSpace(msg, 0):], !utf8.Valid(msg))
	if err != nil {
		return nil, "", nil, false
	}
	return req.id, req.method, req.params, true
}

// ParamsDecoder returns the decoder of the params of method, a request a
// transport answers itself (rpc.authenticate over WebSocket), into a *P:
// checked as Register checks the params of every method (named, each
// once, exact names, types and bounds of the schema of P, valid UTF-8,
// then the Validate method of *P if any), every failure a -32602 naming the field. P must be a struct, as for
// Register; params is the raw params member Request returns.
func ParamsDecoder[P any](method string) func(params json.RawMessage) (*P, *taskwire.Error) {
	pt := newParamsType(method, reflect.TypeFor[P]())
	return func(params json.RawMessage) (*P, *taskwire.Error) {
		obj, e := paramsObject(params)
		if e != nil {
			return nil, e
		}
		p := new(P)
		if err := pt.decode(obj, !utf8.Valid(obj), reflect.ValueOf(p).Elem()); err != nil {
			var rpcErr *taskwire.Error
			if errors.As(err, &rpcErr) {
				return nil, rpcErr
			}
			return nil, taskwire.InvalidParams("%v", err)
		}
		if e := validate(p); e != nil {
			return nil, e
		}
		return p, nil
	}
}
