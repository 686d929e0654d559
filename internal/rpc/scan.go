package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The scanner splits JSON text into the members of an object or the
// elements of an array without copying: every key and value it yields is a
// sub-slice of its input, with no surrounding whitespace. It is a splitter,
// not a validator: the server runs json.Valid on the body first. On text
// that is not valid JSON it returns errSyntax (or yields values that are
// not JSON), but it never panics and never reads out of bounds.

// errSyntax reports text the scanner cannot split.
var errSyntax = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string whose opening quote is
// at b[i].
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errSyntax
		}
		j += k
		// The quote closes the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
}

// valueEnd returns the index just past the value that starts at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
			j++
		}
		return 0, errSyntax
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(b) && !isSpace(b[j]) && strings.IndexByte(`,:]}[{"`, b[j]) < 0 {
		j++
	}
	if j == i {
		return 0, errSyntax
	}
	return j, nil
}

// eachMember calls fn with the key (quotes included, escapes kept) and the
// value of every member of the object obj, in order, and stops at the first
// error fn returns.
func eachMember(obj []byte, fn func(key, val []byte) error) error {
	return eachItem(obj, '{', '}', func(b []byte, i int) (int, error) {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		keyEnd, err := stringEnd(b, i)
		if err != nil {
			return 0, err
		}
		j := skipSpace(b, keyEnd)
		if j >= len(b) || b[j] != ':' {
			return 0, errSyntax
		}
		j = skipSpace(b, j+1)
		end, err := valueEnd(b, j)
		if err != nil {
			return 0, err
		}
		return end, fn(b[i:keyEnd], b[j:end])
	})
}

// eachElement calls fn with every element of the array arr, in order, and
// stops at the first error fn returns.
func eachElement(arr []byte, fn func(val []byte) error) error {
	return eachItem(arr, '[', ']', func(b []byte, i int) (int, error) {
		end, err := valueEnd(b, i)
		if err != nil {
			return 0, err
		}
		return end, fn(b[i:end])
	})
}

// eachItem walks the comma-separated items of a container that opens with
// open and closes with close; item splits the item at b[i] and returns the
// index just past it.
func eachItem(b []byte, open, close byte, item func(b []byte, i int) (int, error)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != open {
		return errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == close {
		return nothingAfter(b, i+1)
	}
	for {
		end, err := item(b, i)
		if err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case close:
			return nothingAfter(b, i+1)
		default:
			return errSyntax
		}
	}
}

func nothingAfter(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errSyntax
	}
	return nil
}

// unquote returns the text of the JSON string s (quotes included), as
// encoding/json reads it: invalid UTF-8 becomes U+FFFD.
func unquote(s []byte) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", errSyntax
	}
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s[1 : len(s)-1]), nil
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return "", errSyntax
	}
	return v, nil
}

// invalidUTF8 returns the offset of the first byte of b that is not part of
// valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// pathAt returns the path ("updates.text", "queues[2]") of the string in the
// JSON text b that holds the byte at offset off, and whether that string is
// an object key (then the path is that of the object). It reads b once, up
// to off.
func pathAt(b []byte, off int) (path string, isKey bool) {
	type frame struct {
		array bool
		index int
		key   string
	}
	var stack []frame
	render := func(frames []frame) string {
		var sb strings.Builder
		for _, f := range frames {
			if f.array {
				sb.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(f.key)
		}
		return sb.String()
	}
	expectKey := false
	for i := 0; i < len(b) && i <= off; {
		switch b[i] {
		case '{':
			stack = append(stack, frame{})
			expectKey = true
		case '[':
			stack = append(stack, frame{array: true})
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].array {
					stack[n-1].index++
				} else {
					expectKey = true
				}
			}
		case ':':
			expectKey = false
		case '"':
			end, err := stringEnd(b, i)
			if err != nil || off < end {
				if expectKey && len(stack) > 0 {
					return render(stack[:len(stack)-1]), true
				}
				return render(stack), false
			}
			if n := len(stack); expectKey && n > 0 {
				stack[n-1].key, _ = unquote(b[i:end])
			}
			i = end
			continue
		}
		i++
	}
	return render(stack), false
}
