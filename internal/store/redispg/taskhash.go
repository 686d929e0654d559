package redispg

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// taskState is a task as the store keeps it: the wire task without its
// result, and what only the store needs.
type taskState struct {
	*taskwire.Task
	// sum is the hex SHA-256 of the stored result, "" while there is none.
	sum string
	// completedBy is the worker that finalized the task, "" for an admin.
	completedBy string
	// resultAttempt is the attempt under which the result was staged.
	resultAttempt int
	// ver counts the changes of the task; PostgreSQL keeps the newest.
	ver int64
}

// fields is the task hash of s, version included, as name, value pairs.
// Times are unix milliseconds; empty optional fields are left out.
func (s *taskState) fields() []string {
	t := s.Task
	f := make([]string, 0, 2*21)
	f = append(f, "id", t.ID, "q", t.Queue, "txt", t.Text, "st", string(t.Status),
		"pr", strconv.Itoa(t.Priority), "att", strconv.Itoa(t.Attempt),
		"max", strconv.Itoa(t.MaxAttempts), "lms", strconv.FormatInt(t.LeaseMs, 10),
		"cr", msString(t.CreatedAt), "up", msString(t.UpdatedAt),
		"ver", strconv.FormatInt(s.ver, 10))
	optional := func(name, v string) {
		if v != "" {
			f = append(f, name, v)
		}
	}
	optional("meta", string(t.Metadata))
	optional("asg", t.AssignedTo)
	optional("run", msString(t.RunAt))
	optional("lease", msString(t.LeaseExpiresAt))
	optional("done", msString(t.CompletedAt))
	optional("err", t.Error)
	optional("rsum", s.sum)
	optional("by", s.completedBy)
	if !t.CompletedAt.IsZero() {
		f = append(f, "dur", strconv.FormatInt(t.DurationMs, 10), "rsz", strconv.FormatInt(t.ResultSize, 10),
			"ratt", strconv.Itoa(s.resultAttempt))
	}
	return f
}

// taskFromHash decodes a task hash; an empty hash is a missing task.
func taskFromHash(h map[string]string) (*taskState, error) {
	if len(h) == 0 {
		return nil, nil
	}
	t := &taskwire.Task{ID: h["id"], Queue: h["q"], Text: h["txt"], Status: taskwire.Status(h["st"]),
		AssignedTo: h["asg"], Error: h["err"]}
	if m := h["meta"]; m != "" {
		t.Metadata = json.RawMessage(m)
	}
	s := &taskState{Task: t, sum: h["rsum"], completedBy: h["by"]}
	var err error
	ints := []struct {
		name string
		dst  *int64
	}{{"lms", &t.LeaseMs}, {"dur", &t.DurationMs}, {"rsz", &t.ResultSize}, {"ver", &s.ver}}
	for _, f := range ints {
		if *f.dst, err = optInt(h, f.name); err != nil {
			return nil, err
		}
	}
	smalls := []struct {
		name string
		dst  *int
	}{{"pr", &t.Priority}, {"att", &t.Attempt}, {"max", &t.MaxAttempts}, {"ratt", &s.resultAttempt}}
	for _, f := range smalls {
		v, err := optInt(h, f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = int(v)
	}
	times := []struct {
		name string
		dst  *time.Time
	}{{"run", &t.RunAt}, {"lease", &t.LeaseExpiresAt}, {"cr", &t.CreatedAt}, {"up", &t.UpdatedAt}, {"done", &t.CompletedAt}}
	for _, f := range times {
		v, err := optInt(h, f.name)
		if err != nil {
			return nil, err
		}
		if v != 0 {
			*f.dst = time.UnixMilli(v).UTC()
		}
	}
	return s, nil
}

// optInt parses field name of h as an integer, 0 when absent.
func optInt(h map[string]string, name string) (int64, error) {
	v, ok := h[name]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("task %s field %s %q: %w", h["id"], name, v, err)
	}
	return n, nil
}

// msString is t in unix milliseconds, "" for the zero time.
func msString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// truncMs is t in UTC at millisecond precision, as the store keeps it.
func truncMs(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// score orders a queue: higher priority first, then older first; the same
// formula as claim.lua's.
func score(t *taskwire.Task) string {
	return strconv.FormatInt(int64(100-t.Priority)*1e13+t.CreatedAt.UnixMilli(), 10)
}

// conflict reports that s's state does not allow an operation.
func conflict(s *taskState, format string, args ...any) *store.ConflictError {
	return store.Conflict(s.Task, format, args...)
}

// requeue makes s pending and unassigned, without a lease; a final task
// loses its outcome too (a re-run).
func (s *taskState) requeue() {
	t := s.Task
	t.Status, t.AssignedTo, t.LeaseExpiresAt = taskwire.StatusPending, "", time.Time{}
	t.Error, t.ResultSize, t.CompletedAt, t.DurationMs = "", 0, time.Time{}, 0
	s.sum, s.completedBy, s.resultAttempt = "", "", 0
}

// finalize makes s completed or failed at now, by worker by ("" for an
// admin); size and sum describe its staged result (0 and "" for none).
func (s *taskState) finalize(status taskwire.Status, errText string, size int64, sum, by string, now time.Time) {
	t := s.Task
	t.Status, t.Error, t.ResultSize, s.sum, s.completedBy = status, errText, size, sum, by
	t.LeaseExpiresAt, t.CompletedAt, t.UpdatedAt = time.Time{}, now, now
	t.DurationMs = now.Sub(t.CreatedAt).Milliseconds()
	s.resultAttempt = t.Attempt
}

// clone returns a deep enough copy of s to change without touching s.
func (s *taskState) clone() *taskState {
	c := *s
	t := *s.Task
	c.Task = &t
	return &c
}
