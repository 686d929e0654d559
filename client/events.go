package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskwire/taskwire"
)

// EventsParams filter the event stream of Client.Events.
type EventsParams struct {
	// Types keeps only these event types (all when empty). An
	// events.gap event passes whatever Types and TaskID say.
	Types []taskwire.EventType
	// TaskID keeps only the events of one task.
	TaskID string
	// After resumes after this event id: the events the server's log still
	// holds after it come first. Empty starts with the events from now on.
	After string
	// OnPosition, when set, is called with each new resume point of the
	// stream: the position the server sends when a connection opens (the
	// event the stream starts after), then the id of each event fn
	// accepted. Given as After to a later Events call, the last one
	// resumes with no gap and no duplicate, also when no event had arrived
	// yet.
	OnPosition func(after string)
}

// Events follows the server's event stream (GET /events, Server-Sent
// Events) and calls fn with each event, in the order of the server's log.
// When the connection drops it reconnects, resuming after the last event
// it delivered (Last-Event-ID), or, before the first, from the position
// the server sent when the stream opened, so no event is skipped or
// repeated; it gives up after MaxAttempts failed connections in a row.
// Where the server's log no longer holds events the stream would have
// delivered (trimmed by its retention), fn gets one event of type
// taskwire.EventGap in their place, whatever the filters: a follower that
// keeps state should reread it then.
// It returns ctx.Err() when ctx ends, fn's error when fn fails, and an
// *Error when the server refuses the filters (an unknown type or event
// id).
func (c *Client) Events(ctx context.Context, p EventsParams, fn func(taskwire.Event) error) error {
	after := p.After
	failures := 0
	for {
		start := time.Now()
		delivered, err := c.followEvents(ctx, p, &after, fn)
		var stop stopError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &stop):
			return stop.err
		case err != nil && !retryable(ctx, err):
			return err
		case err == nil:
			err = errors.New("the server closed the stream")
		}
		if delivered || time.Since(start) > healthyStream {
			failures = 0
		}
		failures++
		if failures >= c.opts.MaxAttempts || !c.sleep(ctx, c.backoff(failures, err)) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("events: %w", err)
		}
	}
}

// healthyStream is how long a connection that delivered no event must have
// lasted for its end not to count as a failure.
const healthyStream = time.Minute

// stopError carries an error of the caller's fn, which ends the stream.
type stopError struct{ err error }

func (s stopError) Error() string { return s.err.Error() }

// followEvents reads one connection of the stream until it ends, moving
// *after to the stream's position and past each event delivered;
// delivered reports whether it delivered any.
func (c *Client) followEvents(ctx context.Context, p EventsParams, after *string, fn func(taskwire.Event) error) (delivered bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.eventsURL(p), nil)
	if err != nil {
		return false, &unsendableError{err}
	}
	req.Header.Set("Accept", "text/event-stream")
	if *after != "" {
		req.Header.Set("Last-Event-ID", *after)
	}
	resp, err := c.do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, statusError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var data strings.Builder
	var id string // the id field of the message being read
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "" && data.Len() == 0:
			// A position: an id alone moves the resume point, no event.
			if id != "" {
				p.moved(after, id)
			}
			id = ""
		case line == "":
			var e taskwire.Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return delivered, fmt.Errorf("undecodable event %.200q: %w", data.String(), err)
			}
			data.Reset()
			id = ""
			if err := fn(e); err != nil {
				return true, stopError{err}
			}
			delivered = true
			p.moved(after, e.ID)
		case field == "data":
			data.WriteString(value)
		case field == "id":
			id = value
		}
	}
	return delivered, sc.Err()
}

// moved sets *after to the stream's new resume point id and tells
// OnPosition when it changed.
func (p EventsParams) moved(after *string, id string) {
	if id == *after {
		return
	}
	*after = id
	if p.OnPosition != nil {
		p.OnPosition(id)
	}
}

// eventsURL is the address of the stream with p's filters.
func (c *Client) eventsURL(p EventsParams) string {
	q := url.Values{}
	if len(p.Types) > 0 {
		types := make([]string, len(p.Types))
		for i, t := range p.Types {
			types[i] = string(t)
		}
		q.Set("types", strings.Join(types, ","))
	}
	if p.TaskID != "" {
		q.Set("taskId", p.TaskID)
	}
	u := c.base + "/events"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}
