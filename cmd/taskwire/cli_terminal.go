package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Task text, errors and results are anyone's input: what the client
// commands print must not let them drive the terminal (set its title,
// colour or move the cursor through ESC or the 8-bit C1 controls) or
// reorder what is shown (bidirectional overrides).

// terminalControl reports whether a terminal acts on r instead of
// showing it: C0 and C1 controls, DEL, and the bidirectional marks,
// embeddings, overrides and isolates.
func terminalControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// visible returns s with each terminal control shown as an escape
// (\x1b, \u202e), for table cells.
func visible(s string) string {
	if strings.IndexFunc(s, terminalControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !terminalControl(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// safeJSON returns the JSON text js with each terminal control that
// encoding/json leaves raw (DEL, C1, bidirectional controls) written as
// a \u escape. Outside strings JSON has no such characters, so the text
// still decodes to the same value.
func safeJSON(js []byte) []byte {
	i := indexControl(js)
	if i < 0 {
		return js
	}
	out := make([]byte, 0, len(js)+64)
	for i >= 0 {
		r, n := utf8.DecodeRune(js[i:])
		out = fmt.Appendf(append(out, js[:i]...), `\u%04x`, r)
		js = js[i+n:]
		i = indexControl(js)
	}
	return append(out, js...)
}

// indexControl returns the offset of the first terminal control in the
// JSON text b, or -1. Its only C0 controls are the whitespace between
// tokens (encoding/json escapes them in strings), left as they are.
func indexControl(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			if b[i] == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if terminalControl(r) {
			return i
		}
		i += n
	}
	return -1
}

// visibleLines is visible for each line of s: the line breaks stay.
func visibleLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = visible(l)
	}
	return strings.Join(lines, "\n")
}
