// Package rpc serves taskwire's JSON-RPC 2.0 methods over HTTP (POST /rpc),
// following the JSON-RPC 2.0 specification to the letter: single requests,
// notifications and batches, the standard error codes and those of SPEC
// section 2. Methods are Go functions registered with their params and
// result types; the params are validated against a JSON Schema generated
// from those types, which rpc.discover publishes as an OpenRPC document.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/budget"
)

// Defaults of Options.
const (
	// DefaultMaxBodyBytes fits a 1 GiB result and the rest of its request.
	DefaultMaxBodyBytes     = 1<<30 + 1<<20
	DefaultMaxBatch         = 1000
	DefaultBatchConcurrency = 32
	DefaultBodyGrace        = time.Minute
	// MinBodyRate (bytes per second) is the slowest a large body may
	// arrive: 1 GiB in about 18 minutes.
	MinBodyRate = 1 << 20
)

// smallBody is the body size up to which a body is read without taking
// from the body budget.
const smallBody = 1 << 20

// bodyWait is the longest a large body waits for its share of the body
// budget before its request is refused.
const bodyWait = 30 * time.Second

// Options tune a Server. Zero values take the defaults.
type Options struct {
	// MaxBodyBytes is the largest request body; a larger one is answered
	// with HTTP 413 and a -32004 error. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBatch is the most requests a batch may hold. Default
	// DefaultMaxBatch.
	MaxBatch int
	// BodyGrace is how long any request body may take to arrive; a body
	// of n bytes gets n/MinBodyRate seconds more. A body not in by then is
	// answered HTTP 408, so that a client trickling bytes cannot hold a
	// connection open. Default DefaultBodyGrace.
	BodyGrace time.Duration
	// BodyBudget bounds the bytes of large request bodies held in memory
	// at once, from the read until the response is written; a body waits
	// for its share (see readBody). At least MaxBodyBytes. Default twice
	// MaxBodyBytes: two of the largest (over smallBody), so that one slow
	// upload does not stop every other. A request holds about twice its
	// body until it is answered (the body, the params decoded from it).
	BodyBudget int64
	// BatchConcurrency is how many requests of one batch run at once.
	// Default DefaultBatchConcurrency.
	BatchConcurrency int
	// Version is the info.version of the rpc.discover document. Default
	// "dev".
	Version string
	// Logger receives internal errors and panics. Default slog.Default().
	Logger *slog.Logger
	// Observe, when set, is called once per call of a registered method
	// (notifications included) with its duration, params decoding
	// included, and its error code, 0 on success; a call of an unknown
	// method is observed as UnknownMethod, whatever it names.
	Observe func(method string, d time.Duration, code taskwire.Code)
}

// UnknownMethod is the method name Options.Observe receives for every
// call of a method the server does not have: one name, so that a client
// cannot grow the metrics by making up names.
const UnknownMethod = "unknown"

// Server is an http.Handler serving JSON-RPC 2.0 over HTTP POST. It is safe
// for concurrent use.
type Server struct {
	methods map[string]*Method
	opts    Options
	log     *slog.Logger
	// unavailableLog spaces out the warnings of a backend that cannot
	// serve (see errorFor).
	unavailableLog *rate.Sometimes
	// bodies is the budget of large request bodies (Options.BodyBudget);
	// a body waits at most bodyWait for its share.
	bodies   *semaphore.Weighted
	bodyWait time.Duration
}

// LongestBody is how long the largest body the server takes may
// legitimately take to arrive: BodyGrace plus a second per MinBodyRate
// bytes of MaxBodyBytes.
func (s *Server) LongestBody() time.Duration {
	return s.ArrivalTime(s.opts.MaxBodyBytes)
}

// ArrivalTime is how long a request body or message of size bytes may
// take to arrive: BodyGrace plus a second per MinBodyRate bytes.
func (s *Server) ArrivalTime(size int64) time.Duration {
	return s.opts.BodyGrace + time.Duration(size/MinBodyRate)*time.Second
}

// NewServer returns a Server for methods and the built-in rpc.discover. It
// panics if two methods share a name or one is named rpc.discover.
func NewServer(methods []Method, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.BodyGrace <= 0 {
		opts.BodyGrace = DefaultBodyGrace
	}
	if opts.BatchConcurrency <= 0 {
		opts.BatchConcurrency = DefaultBatchConcurrency
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BodyBudget <= 0 {
		opts.BodyBudget = 2 * opts.MaxBodyBytes // two of the largest
	}
	opts.BodyBudget = max(opts.BodyBudget, opts.MaxBodyBytes)
	s := &Server{methods: map[string]*Method{}, opts: opts, log: opts.Logger,
		unavailableLog: &rate.Sometimes{First: 1, Interval: unavailableLogInterval},
		bodies:         semaphore.NewWeighted(opts.BodyBudget), bodyWait: bodyWait}
	for _, m := range methods {
		if _, dup := s.methods[m.name]; dup || m.name == taskwire.MethodDiscover {
			panic(fmt.Sprintf("rpc: method %s registered twice (rpc.discover is built in)", m.name))
		}
		s.methods[m.name] = &m
	}
	doc := discoverDocument(methods, opts.Version)
	discover := Register(taskwire.MethodDiscover, "Returns the OpenRPC document of every method.",
		func(context.Context, *taskwire.NoParams) (json.RawMessage, error) { return doc, nil })
	s.methods[discover.name] = &discover
	return s
}

type clientAddrKey struct{}

// ClientAddr returns the network address of the client whose request ctx
// belongs to (http.Request.RemoteAddr), or "" outside a request.
func ClientAddr(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey{}).(string)
	return addr
}

// ServeHTTP answers a JSON-RPC request or batch sent with POST. Every
// response with a body is HTTP 200 (SPEC 1), errors included, except 413
// for a body over MaxBodyBytes; a notification, or a batch of them only,
// is HTTP 204 with no body. Another HTTP method than POST is -32600, a
// body that cannot be read whole -32700, and one that does not arrive in
// time -32600.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusOK,
			errorResponse(nil, invalidRequest("HTTP method %s is not allowed, use POST", r.Method)))
		return
	}
	ctx, release := withHolds(WithClientAddr(r.Context(), r.RemoteAddr))
	defer release()
	body, err := s.readBody(ctx, w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.Is(err, ErrBodyBudget):
			writeJSON(w, http.StatusOK, BudgetRefusal())
		case errors.As(err, &tooLarge):
			writeJSON(w, http.StatusRequestEntityTooLarge,
				errorResponse(nil, taskwire.TooLarge("body", int(s.opts.MaxBodyBytes))))
		case errors.As(err, &netErr) && netErr.Timeout():
			writeJSON(w, http.StatusOK,
				errorResponse(nil, invalidRequest("the request body did not arrive in time")))
		default:
			// Broken chunked framing, or a body cut short of its
			// Content-Length: what arrived is not the JSON sent. (A
			// client that went away mid-body never reads this.)
			writeJSON(w, http.StatusOK, errorResponse(nil, bodyUnreadable()))
		}
		return
	}
	out := s.handle(ctx, body)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out...)
}

// readBody reads the whole body into one buffer: of exactly the announced
// size when there is a Content-Length, so a large body is never copied.
// A body over smallBody bytes first takes its size from the body budget,
// held until the response is written (ctx carries the holds); one of
// unknown length takes as much as the largest body once it runs past
// smallBody. A body that waits bodyWait for its share is refused with
// ErrBodyBudget, unread.
func (s *Server) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request) (body []byte, err error) {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength > smallBody {
		if err := s.reserveBody(ctx, r.ContentLength); err != nil {
			return nil, err
		}
	}
	// The deadline covers this body only: it is lifted once the body is
	// in, so that a long poll or a large response is not cut. (After a
	// failure it stays, so that the server does not wait for the rest.)
	size := r.ContentLength
	if size < 0 {
		size = limit
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.ArrivalTime(size))) == nil {
		defer func() {
			if err == nil {
				_ = rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	in := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 {
		b, release, err := s.readUnsized(ctx, in, limit)
		if err == nil && !Hold(ctx, release) {
			release()
		}
		return b, err
	}
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(in, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ErrBodyBudget refuses a request that found no room in the body budget;
// BudgetRefusal is its answer.
var ErrBodyBudget = errors.New("the requests being read fill the memory budget")

// BudgetRefusal is the response to a request refused with ErrBodyBudget:
// -32001 with backend "memory", id null (the request was not read).
func BudgetRefusal() []byte { return errorResponse(nil, unavailable("memory", time.Second)) }

// reserveBody takes n bytes from the body budget (see takeBody) and holds
// them until the response is written (Hold).
func (s *Server) reserveBody(ctx context.Context, n int64) error {
	release, err := s.takeBody(ctx, n)
	if err != nil {
		return err
	}
	if !Hold(ctx, release) {
		release()
	}
	return nil
}

// takeBody takes n bytes from the body budget, waiting up to s.bodyWait,
// and returns the function that gives them back.
func (s *Server) takeBody(ctx context.Context, n int64) (release func(), err error) {
	release, err = budget.Take(ctx, s.bodies, n, s.bodyWait)
	if errors.Is(err, budget.ErrExhausted) {
		err = ErrBodyBudget
	}
	return release, err
}

// ReadMessage reads one request message of a stream (a WebSocket
// message) from r, whose length is not known until its end, under the
// budget of POST bodies, as a body without a Content-Length
// (readUnsized): limit is the largest message r can give. release gives
// its share back: call it once the message's response is written or
// dropped. A message that waited too long for its share is read to its
// end and dropped, and ReadMessage returns ErrBodyBudget (answer it with
// BudgetRefusal).
func (s *Server) ReadMessage(ctx context.Context, r io.Reader, limit int64) (msg []byte, release func(), err error) {
	msg, release, err = s.readUnsized(ctx, r, limit)
	if errors.Is(err, ErrBodyBudget) {
		if _, drainErr := io.Copy(io.Discard, r); drainErr != nil {
			return nil, nil, drainErr
		}
	}
	return msg, release, err
}

// readUnsized reads r whole, its length known only at its end: once it
// runs past smallBody bytes, it takes from the body budget as it grows,
// twice what has arrived before reading on (a buffer grown by doubling
// holds up to that), at most limit (and the whole budget); release gives
// it all back. A message that stalls part way so holds about twice what
// it sent, not the largest message's share. A read that finds no room in
// time returns ErrBodyBudget, the rest of r unread.
func (s *Server) readUnsized(ctx context.Context, r io.Reader, limit int64) (b []byte, release func(), err error) {
	b, err = io.ReadAll(io.LimitReader(r, smallBody+1))
	if err != nil || len(b) <= smallBody {
		return b, func() {}, err
	}
	most := min(limit, s.opts.BodyBudget)
	var held int64
	var releases []func()
	release = func() {
		for _, give := range releases {
			give()
		}
	}
	buf := bytes.NewBuffer(b) // grows b, without a copy at the end
	for {
		if more := min(2*int64(buf.Len()), most) - held; more > 0 {
			give, err := s.takeBody(ctx, more)
			if err != nil {
				release()
				return nil, nil, err
			}
			releases, held = append(releases, give), held+more
		}
		step := io.LimitReader(r, held-int64(buf.Len()))
		if held == most {
			step = r // the rest: r ends it by the limit
		}
		if _, err := buf.ReadFrom(step); err != nil {
			release()
			return nil, nil, err
		}
		if int64(buf.Len()) < held || held == most {
			return buf.Bytes(), release, nil
		}
	}
}

// writeJSON writes the response made of parts.
func writeJSON(w http.ResponseWriter, status int, parts ...[]byte) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

// handle answers the body of a POST: the parts of the response body, nil
// when there is none.
func (s *Server) handle(ctx context.Context, body []byte) [][]byte {
	if !json.Valid(body) {
		return [][]byte{errorResponse(nil, parseError())}
	}
	checkUTF8 := !utf8.Valid(body)
	v := body[skipSpace(body, 0):]
	if v[0] == '[' {
		return s.batch(ctx, v, checkUTF8)
	}
	return s.answer(ctx, v, checkUTF8)
}

// answer runs the request object b and returns the parts of its
// response, nil for a notification.
func (s *Server) answer(ctx context.Context, b []byte, checkUTF8 bool) [][]byte {
	req, rpcErr := parseRequest(b, checkUTF8)
	if rpcErr != nil {
		return [][]byte{errorResponse(req.id, rpcErr)}
	}
	var resp [][]byte
	if m := s.methods[req.method]; m == nil {
		rpcErr = methodNotFound(req.method)
		if s.opts.Observe != nil {
			s.opts.Observe(UnknownMethod, 0, rpcErr.Code)
		}
	} else {
		resp, rpcErr = s.call(ctx, m, req.params, checkUTF8, req.id)
	}
	switch {
	case req.id == nil:
		return nil
	case rpcErr != nil:
		return [][]byte{errorResponse(req.id, rpcErr)}
	}
	return resp
}

// call runs method m with the raw params and returns the parts of its
// success response to the request id, nil for a notification (id nil). A
// panic in the method is an internal error, logged with its stack.
func (s *Server) call(ctx context.Context, m *Method, params []byte, checkUTF8 bool, id []byte) (resp [][]byte, rpcErr *taskwire.Error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: method panicked", "method", m.name, "panic", p, "stack", string(debug.Stack()))
			resp, rpcErr = nil, internalError()
		}
		if s.opts.Observe != nil {
			var code taskwire.Code
			if rpcErr != nil {
				code = rpcErr.Code
			}
			s.opts.Observe(m.name, time.Since(start), code)
		}
	}()
	params, rpcErr = paramsObject(params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	v, err := m.call(ctx, params, checkUTF8)
	if err != nil {
		return nil, s.errorFor(m.name, err)
	}
	if id == nil {
		return nil, nil
	}
	if resp, err = resultResponse(id, v); err != nil {
		s.log.Error("rpc: cannot encode result", "method", m.name, "error", err)
		return nil, internalError()
	}
	return resp, nil
}

// paramsObject is the params object a method decodes: {} when the
// request has none; positional params and params nested too deep are a
// -32602.
func paramsObject(params []byte) ([]byte, *taskwire.Error) {
	switch {
	case params == nil:
		return emptyObject, nil
	case params[0] == '[':
		return nil, taskwire.InvalidParams("params must be an object of named params")
	}
	if e := checkDepth(params); e != nil {
		return nil, e
	}
	return params, nil
}

// resultResponse encodes a success response around a method's result v,
// in parts.
func resultResponse(id []byte, v any) ([][]byte, error) {
	head := append(make([]byte, 0, 512+len(id)), `{"jsonrpc":"2.0","result":`...)
	var parts [][]byte
	var err error
	switch r := v.(type) {
	case *taskwire.Task:
		parts, err = appendTask(head, r)
	case *taskwire.ClaimResult:
		parts, err = appendClaim(head, r)
	default:
		var enc []byte
		enc, err = taskwire.MarshalJSON(v)
		parts = [][]byte{append(head, enc...)}
	}
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	last = append(append(last, `,"id":`...), id...)
	parts[len(parts)-1] = append(last, '}')
	return parts, nil
}

// appendTask appends t's encoding to b, in parts. A task encodes itself
// (taskwire.Task.AppendJSON) after validRaw has checked what it holds as
// it was stored. A task whose result is large (most of an answer's bytes)
// and compact is written around its result, which goes out as it is: no
// copy of it is made.
func appendTask(b []byte, t *taskwire.Task) ([][]byte, error) {
	if !validRaw(t) {
		return nil, errTaskEncoding
	}
	if len(t.Result) <= taskwire.ListResultLimit || bytes.ContainsAny(t.Result, " \t\r\n") {
		b, err := t.AppendJSON(b)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	b, tail, err := t.AppendJSONAround(b, nil)
	if err != nil {
		return nil, err
	}
	return [][]byte{b, t.Result, tail}, nil
}

// appendClaim appends the encoding of a task.claim result to b
// (taskwire.ClaimResult.AppendJSON), its tasks checked as appendTask
// checks one.
func appendClaim(b []byte, r *taskwire.ClaimResult) ([][]byte, error) {
	if r.Task != nil && !validRaw(r.Task) {
		return nil, errTaskEncoding
	}
	for _, t := range r.Tasks {
		if t != nil && t != r.Task && !validRaw(t) {
			return nil, errTaskEncoding
		}
	}
	b, err := r.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// validRaw reports whether the metadata and result of t, kept as they
// were stored, are JSON, as encoding/json checks what a type encodes
// itself. The rest of a task's encoding is written by taskwire, whose
// strings FuzzJSONString holds to encoding/json's byte for byte; checking
// only these parts spares a scan of the whole answer (the task twice in a
// claim's).
func validRaw(t *taskwire.Task) bool {
	return (len(t.Metadata) == 0 || json.Valid(t.Metadata)) && (len(t.Result) == 0 || json.Valid(t.Result))
}

// errTaskEncoding is a task whose encoding is not JSON.
var errTaskEncoding = errors.New("the task's encoding is not JSON")

// errorResponse encodes an error response; a nil id is written null.
func errorResponse(id []byte, e *taskwire.Error) []byte {
	if id == nil {
		id = jsonNull
	}
	enc, err := taskwire.MarshalJSON(e)
	if err != nil {
		// Only a method's own *taskwire.Error can carry data that does
		// not encode; its code and message still do.
		enc, _ = taskwire.MarshalJSON(taskwire.Error{Code: e.Code, Message: e.Message})
	}
	b := make([]byte, 0, len(`{"jsonrpc":"2.0","error":,"id":}`)+len(enc)+len(id))
	b = append(b, `{"jsonrpc":"2.0","error":`...)
	b = append(b, enc...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}
