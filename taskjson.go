package taskwire

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the wire form of t to b, what MarshalJSON returns,
// field by field in the order of SPEC section 3 (Task's order), without
// reflection: tasks are most of what the server writes. Strings are
// escaped as encoding/json escapes them, without its escaping of <, > and
// &; metadata and result are appended compacted but not checked to be
// JSON (encoding/json checks what MarshalJSON returns; a caller of
// AppendJSON checks them, or what it appended). b grows once for the
// result and what follows it, with room for a few hundred bytes more (the
// end of a response around the task), so that a large result is copied
// into b once.
func (t *Task) AppendJSON(b []byte) ([]byte, error) {
	b, err := t.appendHead(b)
	if err != nil {
		return nil, err
	}
	// An error message escaped grows up to six times (\u00XX).
	b = slices.Grow(b, len(t.Result)+6*len(t.Error)+tailRoom)
	if b, err = appendRawJSON(b, t.Result); err != nil {
		return nil, err
	}
	return t.appendTail(b), nil
}

// AppendJSONAround appends the wire form of t as AppendJSON does, but for
// its result, which a writer sends between head and tail as it is: head
// ends with "result": and tail goes on after the result. A large result
// is then written without a copy. The result must be compact JSON, as
// AppendJSON would write it.
func (t *Task) AppendJSONAround(head, tail []byte) ([]byte, []byte, error) {
	head, err := t.appendHead(head)
	if err != nil {
		return nil, nil, err
	}
	return head, t.appendTail(tail), nil
}

// AppendJSON appends the wire form of r to b, what MarshalJSON returns,
// without reflection: every task.claim answers one. The task claimed first
// is both Task and the first of Tasks; it is encoded once and its bytes
// copied. As with Task.AppendJSON, a caller checks the tasks' metadata
// and results, or what was appended, to be JSON.
func (r *ClaimResult) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"claimed":`...)
	b = strconv.AppendBool(b, r.Claimed)
	if r.TaskID != "" {
		b = append(b, `,"taskId":`...)
		b = appendJSONString(b, r.TaskID)
	}
	var err error
	var task []byte // r.Task's encoding in b
	if r.Task != nil {
		b = append(b, `,"task":`...)
		start := len(b)
		if b, err = r.Task.AppendJSON(b); err != nil {
			return nil, err
		}
		task = b[start:]
	}
	if len(r.Tasks) == 0 {
		return append(b, '}'), nil
	}
	b = append(b, `,"tasks":[`...)
	for i, t := range r.Tasks {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case t == nil:
			b = append(b, "null"...)
		case t == r.Task:
			b = append(b, task...)
		default:
			if b, err = t.AppendJSON(b); err != nil {
				return nil, err
			}
		}
	}
	return append(b, "]}"...), nil
}

// appendHead appends the fields of t's wire form before the result's
// value, "result": included.
func (t *Task) appendHead(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, t.ID)
	b = append(b, `,"queue":`...)
	b = appendJSONString(b, t.Queue)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, t.Text)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(t.Status))
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(t.Priority), 10)
	b = append(b, `,"metadata":`...)
	b, err := appendRawJSON(b, t.Metadata)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"assignedTo":`...)
	b = appendJSONStringOrNull(b, t.AssignedTo)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(t.Attempt), 10)
	b = append(b, `,"maxAttempts":`...)
	b = strconv.AppendInt(b, int64(t.MaxAttempts), 10)
	b = append(b, `,"leaseMs":`...)
	b = strconv.AppendInt(b, t.LeaseMs, 10)
	b = append(b, `,"runAt":`...)
	b = appendJSONTime(b, t.RunAt)
	b = append(b, `,"leaseExpiresAt":`...)
	b = appendJSONTime(b, t.LeaseExpiresAt)
	return append(b, `,"result":`...), nil
}

// appendTail appends the fields of t's wire form after the result's
// value, and the closing brace.
func (t *Task) appendTail(b []byte) []byte {
	if t.ResultSize != 0 {
		b = append(b, `,"resultSize":`...)
		b = strconv.AppendInt(b, t.ResultSize, 10)
	}
	if t.ResultTruncated {
		b = append(b, `,"resultTruncated":true`...)
	}
	b = append(b, `,"error":`...)
	b = appendJSONStringOrNull(b, t.Error)
	b = append(b, `,"createdAt":`...)
	b = appendJSONTime(b, t.CreatedAt)
	b = append(b, `,"updatedAt":`...)
	b = appendJSONTime(b, t.UpdatedAt)
	b = append(b, `,"completedAt":`...)
	b = appendJSONTime(b, t.CompletedAt)
	b = append(b, `,"durationMs":`...)
	if t.CompletedAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, t.DurationMs, 10)
	}
	return append(b, '}')
}

// tailRoom is the room AppendJSON leaves after a task's result for the
// fields that follow it (the error message aside) and a few hundred bytes
// more.
const tailRoom = 768

// appendRawJSON appends m compacted, or null when m is empty.
func appendRawJSON(b []byte, m json.RawMessage) ([]byte, error) {
	if len(m) == 0 {
		return append(b, "null"...), nil
	}
	if !bytes.ContainsAny(m, " \t\r\n") {
		return append(b, m...), nil // compact already; the caller checks it is JSON
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendJSONStringOrNull appends s as a JSON string, or null when it is
// empty.
func appendJSONStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONTime appends t as a JSON string in TimeLayout, or null when it
// is zero.
func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, t)
	return append(b, '"')
}

// appendTime appends t in UTC in TimeLayout: t.UTC().AppendFormat(b,
// TimeLayout), written digit by digit for the years that have four.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	return append(b, 'Z')
}

// appendDigits appends the width lowest decimal digits of n (n >= 0),
// zero-padded.
func appendDigits(b []byte, n, width int) []byte {
	b = append(b, "0000"[:width]...)
	for i := len(b) - 1; i >= len(b)-width; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it with HTML escaping off: quote and backslash, control
// characters (\b \f \n \r \t short, the rest as \u00XX), U+2028 and
// U+2029 escaped; an invalid UTF-8 byte becomes \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// MarshalJSON is json.Marshal without the escaping of <, > and & (6 bytes
// each), as taskwire writes every answer: the size limits hold for this
// encoding, and messages such as "must be <= 100" stay readable.
func MarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
