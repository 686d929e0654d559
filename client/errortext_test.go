package client

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestErrorText: a handler's error reaches task.complete in a form the
// server accepts, whatever the handler said.
func TestErrorText(t *testing.T) {
	long := strings.Repeat("é", maxErrorRunes+10)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "disk full", "disk full"},
		{"empty", "", "handler failed"},
		{"NUL", "bad\x00thing", "bad\uFFFDthing"},
		{"invalid UTF-8", "bad\xffthing", "bad\uFFFDthing"},
		{"too long", long, long[:2*maxErrorRunes]},
	}
	for _, tt := range tests {
		got := errorText(errors.New(tt.in))
		if got != tt.want {
			t.Errorf("%s: errorText = %.40q (%d runes), want %.40q", tt.name, got, utf8.RuneCountInString(got), tt.want)
		}
	}
}
