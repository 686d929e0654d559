package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/web"
)

func (s *Server) routes(rpcHandler http.Handler, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/rpc", s.guard("", s.untilRevoked(rpcHandler)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.guard(taskwire.MethodSystemMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /v1/tasks/{id}/result", s.guard(taskwire.MethodTaskGet, http.HandlerFunc(s.result)))
	mux.Handle("GET /v1/tasks/{id}/events", s.guard(taskwire.MethodTaskGet, http.HandlerFunc(s.taskEvents)))
	mux.Handle("GET /events", s.guard(taskwire.MethodEventsSubscribe, s.untilRevoked(s.events)))
	mux.Handle("/ws", s.ws)
	dashboard := web.Handler()
	mux.Handle("GET /{$}", dashboard)
	mux.Handle("GET /static/", dashboard)
	mux.Handle("/", noEndpoint(mux))
	return mux
}

// noEndpoint answers the requests no endpoint of mux takes as SPEC 6 has
// all bad input answered, with a JSON-RPC error object (id null) instead
// of net/http's plain text: 405 with Allow when the path is served for
// GET, else 404.
func noEndpoint(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		data := map[string]any{"method": r.Method, "path": truncate(r.URL.Path, 256)}
		if _, pattern := mux.Handler(get); pattern != "/" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, &taskwire.Error{Code: taskwire.CodeInvalidRequest,
				Message: "Invalid Request: method " + r.Method + " not allowed here", Data: data})
			return
		}
		writeError(w, http.StatusNotFound, &taskwire.Error{Code: taskwire.CodeInvalidRequest,
			Message: "Invalid Request: no endpoint at this path", Data: data})
	})
}

// truncate returns s cut to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// readyz answers 200 when every backend answers, else 503 with the
// backends that do not; the log says why (the endpoint is open to anyone,
// so its body does not).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	down := map[string]string{}
	for name, err := range s.svc.PingBackends(r.Context()) {
		if err != nil {
			down[name] = "unavailable"
			s.log.Warn("readyz", "backend", name, "err", err)
		}
	}
	if len(down) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "backends": down})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// result streams the stored result bytes of a task: 404 with a JSON-RPC
// error object when the task does not exist or has no result yet, 400
// with the -32602 of task.get for an id no task can have.
func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if e := taskwire.CheckTaskID("id", id); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	rc, size, err := s.svc.Store().OpenResult(r.Context(), id)
	if err != nil {
		if errors.Is(err, store.ErrNoResult) {
			err = s.noResult(w, r, id)
		}
		if err != nil {
			s.resultError(w, id, err)
		}
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/json")
	if size == 0 {
		// A final task with no result value (a failed task): its result
		// is JSON null, as task.get shows it.
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "null")
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("stream result", "task", id, "err", err)
	}
}

// noResult answers for task id, which has no result yet, the -32003 of a
// task whose state does not allow the call (data {taskId, status,
// assignedTo}) with 404; it returns the error of reading the task instead.
func (s *Server) noResult(w http.ResponseWriter, r *http.Request, id string) error {
	t, err := s.svc.Store().GetTask(r.Context(), id)
	if err != nil {
		return err
	}
	var assignedTo *string
	if t.AssignedTo != "" {
		assignedTo = &t.AssignedTo
	}
	writeError(w, http.StatusNotFound, &taskwire.Error{Code: taskwire.CodeConflict,
		Message: "Task has no result yet: " + id,
		Data:    map[string]any{"taskId": id, "status": t.Status, "assignedTo": assignedTo}})
	return nil
}

// resultError answers err of reading task id's result: 404 with the error
// of task.get for a task that does not exist, 503 with -32001 for a
// backend that cannot serve now, else 500.
func (s *Server) resultError(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Task not found: " + id, Data: map[string]any{"taskId": id}})
		return
	}
	if e := rpc.Unavailable(err); e != nil {
		writeError(w, http.StatusServiceUnavailable, e)
		return
	}
	s.log.Error("open result", "task", id, "err", err)
	writeError(w, http.StatusInternalServerError, taskwire.Errorf(taskwire.CodeInternalError, "Internal error"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, e *taskwire.Error) {
	writeJSON(w, status, map[string]any{"jsonrpc": "2.0", "error": e, "id": nil})
}
