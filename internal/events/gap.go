package events

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/taskwire/taskwire"
)

// The logs number their events with consecutive integers (the store
// contract), but for runs of IDs a log skips on purpose and never issues
// (Skips): an event whose ID is more than one past the last one read
// means that the events between are no longer in the log, unless the log
// says that none was issued. A subscriber is then sent an events.gap
// event in their place (taskwire.EventGap).

// Skips is what a Log may offer besides: IssuedBetween reports whether a
// reader resuming after after may have missed events before next, false
// only when every ID strictly between was skipped on purpose and never
// issued. Without it every jump counts as events missing.
type Skips interface {
	IssuedBetween(ctx context.Context, after, next string) (bool, error)
}

// eventNumber returns the integer an event ID stands for: 0 for "" and
// "0" (before the first event); ok is false for an ID of another shape.
func eventNumber(id string) (n uint64, ok bool) {
	if id == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return n, err == nil
}

// missing reports whether events are missing between the event last and
// the event next, the first one read after it.
func missing(last, next string) bool {
	l, ok1 := eventNumber(last)
	n, ok2 := eventNumber(next)
	return ok1 && ok2 && n > l+1
}

// successor returns the ID of the event that follows id.
func successor(id string) string {
	n, _ := eventNumber(id)
	return strconv.FormatUint(n+1, 10)
}

// gapEvent returns the events.gap event that stands for the events after
// last and before next; its ID is the last missing event's.
func gapEvent(last, next string) taskwire.Event {
	if last == "" {
		last = "0"
	}
	n, _ := eventNumber(next)
	payload, _ := json.Marshal(taskwire.GapPayload{After: last, Next: next}) // strings: cannot fail
	return taskwire.Event{ID: strconv.FormatUint(n-1, 10), Type: taskwire.EventGap, Payload: payload,
		Metadata: json.RawMessage("{}"), Timestamp: time.Now().UnixMilli()}
}

// withGaps returns evs, read from log after last, with an events.gap event
// before each event that does not follow the one before it and was not
// preceded by IDs the log skipped (evs itself when there is none). When
// the log cannot tell, the jump counts as a gap.
func withGaps(ctx context.Context, log Log, last string, evs []taskwire.Event) []taskwire.Event {
	var out []taskwire.Event
	for i := range evs {
		if missing(last, evs[i].ID) && issuedBetween(ctx, log, last, evs[i].ID) {
			if out == nil {
				out = append(make([]taskwire.Event, 0, len(evs)+1), evs[:i]...)
			}
			out = append(out, gapEvent(last, evs[i].ID))
		}
		if out != nil {
			out = append(out, evs[i])
		}
		last = evs[i].ID
	}
	if out == nil {
		return evs
	}
	return out
}

// issuedBetween reports whether log issued events between after and next,
// true when it cannot tell.
func issuedBetween(ctx context.Context, log Log, after, next string) bool {
	skips, ok := log.(Skips)
	if !ok {
		return true
	}
	issued, err := skips.IssuedBetween(ctx, after, next)
	return issued || err != nil
}

// clipGap returns e, an events.gap event, with its After raised to seen
// when the subscriber had the events up to seen already: a gap the hub saw
// after its own position may begin before a subscriber's.
func clipGap(e taskwire.Event, seen string) taskwire.Event {
	var p taskwire.GapPayload
	if json.Unmarshal(e.Payload, &p) != nil || compareIDs(p.After, seen) >= 0 {
		return e
	}
	p.After = seen
	e.Payload, _ = json.Marshal(p) // strings: cannot fail
	return e
}
