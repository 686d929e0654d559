package main

import "testing"

// TestCommandResult: a command's output is its result as JSON when it is
// JSON, else as a JSON string of the text, <, > and & as they are.
func TestCommandResult(t *testing.T) {
	for out, want := range map[string]string{
		" {\"a\": 1}\n":   `{"a": 1}`,
		"<b> & c\n\n":     `"<b> & c"`,
		"line\n\"two\"":   `"line\n\"two\""`,
		"bad \xff byte\n": `"bad \ufffd byte"`,
	} {
		if got := string(commandResult([]byte(out))); got != want {
			t.Errorf("commandResult(%q) = %s, want %s", out, got, want)
		}
	}
}
