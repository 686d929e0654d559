package taskwire

import (
	"fmt"
	"strings"
	"time"
)

// TimeLayout is the wire format of every timestamp: ISO-8601 in UTC with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time is a timestamp written as ISO-8601 UTC with milliseconds
// (2025-01-19T12:45:00.000Z). It reads any RFC 3339 timestamp.
type Time struct{ time.Time }

// NewTime returns t as a wire timestamp, truncated to milliseconds.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes the timestamp in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = appendTime(b, t.Time)
	return append(b, '"'), nil
}

// UnmarshalJSON reads an RFC 3339 timestamp, whose T and Z may be
// lowercase (RFC 3339 section 5.6).
func (t *Time) UnmarshalJSON(b []byte) error {
	errNotTime := fmt.Errorf("timestamp must be an RFC 3339 string")
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errNotTime
	}
	v, err := time.Parse(time.RFC3339Nano, strings.ToUpper(string(b[1:len(b)-1])))
	if err != nil {
		return errNotTime
	}
	t.Time = v.UTC()
	return nil
}

func (t *Time) std() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
