package taskwire

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
)

// FitJSON returns m, one valid JSON value, when it is at most limit bytes
// long; else its compact encoding when that fits: no space between
// tokens, strings escaped as encoding/json escapes them with HTML
// escaping off (so \u0026 becomes &), numbers as written, members in
// their order. ok is false when m is over limit even so, or not valid
// JSON. The size limits of metadata hold for this encoding, which is the
// one taskwire writes; only values over the limit as sent pay for the
// re-encoding.
func FitJSON(m json.RawMessage, limit int) (fit json.RawMessage, ok bool) {
	if len(m) <= limit {
		return m, true
	}
	dec := json.NewDecoder(bytes.NewReader(m))
	dec.UseNumber()
	// open holds, for each open array or object, whether it is an object
	// and how many tokens (keys and values) it holds so far.
	type level struct {
		object bool
		n      int
	}
	var open []level
	out := make([]byte, 0, limit+1)
	for len(out) <= limit {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			open = open[:len(open)-1]
			out = append(out, byte(d))
			continue
		}
		if len(open) > 0 {
			top := &open[len(open)-1]
			switch {
			case top.object && top.n%2 == 1:
				out = append(out, ':')
			case top.n > 0:
				out = append(out, ',')
			}
			top.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			out = append(out, byte(v))
			open = append(open, level{object: v == '{'})
		case string:
			out = appendJSONString(out, v)
		case json.Number:
			out = append(out, v...)
		case bool:
			out = strconv.AppendBool(out, v)
		case nil:
			out = append(out, "null"...)
		}
	}
	return nil, false
}
