package taskwire

import (
	"encoding/json"
	"testing"
)

func TestFitJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		limit int
		want  string // "" when it does not fit
	}{
		// Within the limit as it is: returned unchanged, spaces and all.
		{"fits as sent", `{ "a" : "\u0026" }`, 20, `{ "a" : "\u0026" }`},
		// Over it: compacted, members and their order kept, numbers as
		// written, nesting and every kind of value.
		{"spaces", "{\n  \"b\": [1.50, -2e+3, true, false, null],\n  \"a\": {\"x\": {}, \"y\": []}\n}", 54,
			`{"b":[1.50,-2e+3,true,false,null],"a":{"x":{},"y":[]}}`},
		// Escapes that JSON does not require are dropped (<, > and & as
		// encoding/json escapes them, a surrogate pair, any other
		// character); those it requires, and U+2028, stay.
		{"escapes", `{"\u0061":"\u003c\u003e\u0026 \ud83d\ude00 \"\\\n\u0001\u2028"}`, 40,
			`{"a":"<>& 😀 \"\\\n\u0001\u2028"}`},
		// A repeated key is kept as it was sent.
		{"repeated key", `{"a": 1, "a": 2}`, 13, `{"a":1,"a":2}`},
		{"top-level array", `[ 1, [ 2, 3 ], { } ]`, 14, `[1,[2,3],{}]`},
		{"string", `"\u0026\u0026"`, 5, `"&&"`},
		// The compact encoding exactly at the limit fits, one byte over
		// does not.
		{"at the limit", `{"a": "xx"}`, 10, `{"a":"xx"}`},
		{"one byte over", `{"a": "xxx"}`, 10, ""},
		{"not JSON", `{"a": 1,,,}`, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := FitJSON(json.RawMessage(tt.in), tt.limit)
			if tt.want == "" {
				if ok {
					t.Errorf("FitJSON(%s, %d) = %s, true; want false", tt.in, tt.limit, got)
				}
				return
			}
			if !ok || string(got) != tt.want {
				t.Errorf("FitJSON(%s, %d) = %s, %v; want %s, true", tt.in, tt.limit, got, ok, tt.want)
			}
		})
	}
}
