package server

import (
	"net/http"
	"strconv"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
)

// Bounds of ?limit= of GET /v1/tasks/{id}/events.
const (
	taskEventsDefault = 1000
	taskEventsMax     = 10000
)

// taskEvents answers {"events": [...]}: the events of a task that the log
// still holds, oldest first, at most ?limit= (default taskEventsDefault,
// at most taskEventsMax) of the oldest. An unknown task, or one whose
// events were all trimmed, has an empty list; an id no task can have, or
// a bad limit, is HTTP 400 with a -32602 error.
func (s *Server) taskEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if e := taskwire.CheckTaskID("id", id); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	limit := taskEventsDefault
	if q := r.URL.Query(); q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > taskEventsMax {
			writeError(w, http.StatusBadRequest, taskwire.InvalidParams("limit: must be an integer from 1 to %d", taskEventsMax))
			return
		}
		limit = n
	}
	evs, err := s.svc.Store().TaskEvents(r.Context(), id, limit)
	if e := rpc.Unavailable(err); e != nil {
		writeError(w, http.StatusServiceUnavailable, e)
		return
	}
	if err != nil {
		s.log.Error("task events", "task", id, "err", err)
		writeError(w, http.StatusInternalServerError, taskwire.Errorf(taskwire.CodeInternalError, "Internal error"))
		return
	}
	writeJSON(w, http.StatusOK, map[string][]taskwire.Event{"events": evs})
}
