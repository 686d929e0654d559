package events

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/store"
)

// SSEOptions tune the Server-Sent Events handler.
type SSEOptions struct {
	// Heartbeat is how often an idle stream gets a comment line, so that
	// proxies and clients keep it open (default 15s).
	Heartbeat time.Duration
	// Logger receives dropped streams and failed subscriptions (default
	// slog.Default()).
	Logger *slog.Logger
}

// NewSSEHandler returns the handler of GET /events: the hub's events as a
// Server-Sent Events stream (SPEC section 1).
//
//   - ?types=a,b (also repeated) keeps only those event types; an unknown
//     type is HTTP 400 with a JSON-RPC error object naming it.
//   - ?taskId=ID keeps only the events of one task; an id no task can
//     have (taskwire.CheckTaskID) is HTTP 400 with a JSON-RPC error.
//   - the Last-Event-ID header (or ?lastEventId= when the header is
//     absent) resumes: the events the log still holds after that ID come
//     first, then live ones, with no gap and no duplicate. Without it the
//     stream starts with the events committed from now on.
//
// The stream begins with its position: "id: ID" and a blank line, no
// data, where ID is the event the stream's events follow (the resume
// point, else the newest event of the log, "0" when it has none). It sets
// the client's last event ID without dispatching an event, so that a
// client whose connection drops before any event arrived resumes from it
// and misses nothing. Each event is then written as "id: ID", "event:
// TYPE" and "data: " followed by the event's JSON envelope {id, type,
// payload, metadata, timestamp}, then a blank line, and flushed. An idle stream gets ": keepalive" every
// Heartbeat. The stream ends when the client goes away or the hub closes;
// a subscriber too slow to keep up is cut off and may resume with its
// Last-Event-ID.
func NewSSEHandler(hub *Hub, opts SSEOptions) http.Handler {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &sseHandler{hub: hub, opts: opts}
}

type sseHandler struct {
	hub  *Hub
	opts SSEOptions
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{TaskID: q.Get("taskId")}
	if e := taskwire.CheckTaskID("taskId", f.TaskID); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	for _, v := range q["types"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.Types = append(f.Types, taskwire.EventType(t))
			}
		}
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = q.Get("lastEventId")
	}

	sub, err := h.hub.Subscribe(r.Context(), f, after)
	if err != nil {
		h.refuse(w, r, after, err)
		return
	}
	defer sub.Close()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if _, err := w.Write(appendPosition(nil, sub.Start())); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	// When the subscription ends (the hub closes for a shutdown, or the
	// client is too slow), a write blocked on a client that stopped
	// reading must fail rather than hold the handler: the server has no
	// WriteTimeout, for the sake of these streams. A client that reads
	// gets the rest, and the response's end, within streamEndGrace.
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-sub.Done():
			_ = rc.SetWriteDeadline(time.Now().Add(streamEndGrace))
		case <-finished:
		}
	})
	defer func() {
		close(finished)
		wg.Wait()
	}()

	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	var buf []byte
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); errors.Is(err, ErrSlowConsumer) {
					h.opts.Logger.Warn("events: stream dropped", "remote", r.RemoteAddr, "err", err)
				}
				return
			}
			buf = appendEvent(buf[:0], &e)
			// Write everything that is already waiting before one flush.
			for more := true; more && len(buf) < 64<<10; {
				select {
				case e, ok := <-sub.Events():
					if !ok {
						more = false
						break
					}
					buf = appendEvent(buf, &e)
				default:
					more = false
				}
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			heartbeat.Reset(h.opts.Heartbeat)
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// streamEndGrace is how long a stream whose subscription ended may take
// to write what is left and end its response.
const streamEndGrace = time.Second

// appendPosition appends the position line of a stream that starts after
// id: an id field alone, which sets the client's last event ID without
// dispatching an event (HTML Living Standard, "Server-sent events").
func appendPosition(b []byte, id string) []byte {
	b = append(b, "id: "...)
	b = append(b, id...)
	return append(b, "\n\n"...)
}

// appendEvent appends e to b in the text/event-stream format.
func appendEvent(b []byte, e *taskwire.Event) []byte {
	data, err := taskwire.MarshalJSON(e)
	if err != nil {
		// Payload and metadata come from the log as JSON; a row that is
		// not cannot be sent as data but keeps its place in the stream.
		data = []byte(`null`)
	}
	b = append(b, "id: "...)
	b = append(b, e.ID...)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// refuse answers a request that could not subscribe.
func (h *sseHandler) refuse(w http.ResponseWriter, r *http.Request, after string, err error) {
	var unknown *UnknownTypeError
	switch {
	case errors.As(err, &unknown):
		writeError(w, http.StatusBadRequest, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Unknown event type: " + unknown.Type,
			Data: map[string]any{"validation": "types: unknown event type " + unknown.Type,
				"type": unknown.Type, "types": taskwire.EventTypes}})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away while waiting.
	case errors.Is(err, store.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, rpc.Unavailable(err))
	case errors.Is(err, ErrHubClosed):
		writeError(w, http.StatusServiceUnavailable, taskwire.Errorf(taskwire.CodeUnavailable, "Event stream unavailable"))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusBadRequest, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Unknown event id: " + after,
			Data:    map[string]any{"validation": "Last-Event-ID: unknown event id " + after, "lastEventId": after}})
	default:
		h.opts.Logger.Error("events: subscribe", "after", after, "err", err)
		writeError(w, http.StatusInternalServerError, taskwire.Errorf(taskwire.CodeInternalError, "Internal error"))
	}
}

// writeError writes e as the JSON-RPC error object the other HTTP
// endpoints answer with.
func writeError(w http.ResponseWriter, status int, e *taskwire.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "error": e, "id": nil})
}
