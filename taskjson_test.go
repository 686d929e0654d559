package taskwire

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// encodeReflect encodes v with encoding/json, HTML escaping off, as the
// server's responses are encoded: the oracle of the hand-written encoder.
func encodeReflect(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// taskByReflection is the wire form of task as encoding/json writes it
// from the struct tags: same fields and values as MarshalJSON's, in
// another order.
func taskByReflection(t testing.TB, task Task) []byte {
	t.Helper()
	orNil := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := taskWire{
		taskPlain:  taskPlain(task),
		AssignedTo: orNil(task.AssignedTo), Error: orNil(task.Error),
		RunAt: timeOrNil(task.RunAt), LeaseExpiresAt: timeOrNil(task.LeaseExpiresAt),
		CreatedAt: timeOrNil(task.CreatedAt), UpdatedAt: timeOrNil(task.UpdatedAt),
		CompletedAt: timeOrNil(task.CompletedAt),
	}
	w.Metadata, w.Result = nullIfEmpty(task.Metadata), nullIfEmpty(task.Result)
	if !task.CompletedAt.IsZero() {
		w.DurationMs = &task.DurationMs
	}
	return encodeReflect(t, w)
}

func timeOrNil(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	v := NewTime(t)
	return &v
}

func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// checkTaskJSON checks that MarshalJSON writes compact, valid UTF-8 JSON
// with the values encoding/json writes from the struct (FuzzJSONString
// checks the escapes byte by byte).
func checkTaskJSON(t *testing.T, task Task) {
	t.Helper()
	got, err := task.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(got) {
		t.Errorf("not valid UTF-8: %q", got)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil || !bytes.Equal(compact.Bytes(), got) {
		t.Errorf("not compact JSON (%v): %s", err, got)
	}
	want := taskByReflection(t, task)
	if g, w := decodeAny(t, got), decodeAny(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("MarshalJSON wrote\n%s\nencoding/json writes\n%s", got, want)
	}
	if !bytes.ContainsAny(task.Result, " \t\r\n") {
		head, tail, err := task.AppendJSONAround([]byte("x"), []byte("y"))
		result := []byte(task.Result)
		if len(result) == 0 {
			result = []byte("null")
		}
		// head and tail go on from what they held.
		around := slices.Concat(head, result, tail)
		if err != nil || !bytes.HasPrefix(head, []byte("x")) || !bytes.HasPrefix(tail, []byte("y")) ||
			!bytes.Equal(slices.Concat(head[1:], result, tail[1:]), got) {
			t.Errorf("AppendJSONAround around the result (%v):\n%s\nMarshalJSON wrote\n%s", err, around, got)
		}
	}
}

func TestTaskMarshalJSONAsReflection(t *testing.T) {
	at := time.Date(2025, 1, 19, 12, 45, 0, 123_456_789, time.UTC)
	checkTaskJSON(t, Task{})
	checkTaskJSON(t, Task{ID: "t-1", Queue: "q", Text: "x", Status: StatusPending, Priority: 50,
		MaxAttempts: 3, LeaseMs: 1000, RunAt: at, CreatedAt: at, UpdatedAt: at})
	checkTaskJSON(t, Task{ID: "t-2", Text: "<b>\"q\"\\ \x00\x1f\t\n\r\b\f\u2028\u2029 é \xff end",
		Status: StatusCompleted, Metadata: json.RawMessage(`{ "a" : [1, 2,
		"x y"] }`), AssignedTo: "w", Attempt: 2, LeaseExpiresAt: at.Add(time.Hour),
		Result: json.RawMessage(`"r"`), ResultSize: 3, Error: "e", CompletedAt: at.AddDate(0, 0, 1),
		DurationMs: 0})
	checkTaskJSON(t, Task{Result: json.RawMessage(`[1,{"b":null}]`), ResultSize: 1 << 20, ResultTruncated: true,
		CreatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(12000, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))})
}

func TestTaskMarshalJSONBadRawJSON(t *testing.T) {
	if _, err := json.Marshal(Task{Metadata: json.RawMessage(`{"a": }`)}); err == nil {
		t.Error("metadata that is not JSON: no error")
	}
	if _, err := json.Marshal(Task{Result: json.RawMessage(`{"a":}`)}); err == nil {
		t.Error("compact result that is not JSON: no error")
	}
}

func TestAppendTimeAsFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("e", 5*3600+1800), time.FixedZone("w", -11*3600)}
	for range 100_000 {
		at := time.Unix(rng.Int64N(400_000_000_000)-200_000_000_000, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
		if got, want := string(appendTime(nil, at)), at.UTC().Format(TimeLayout); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", at, got, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&", "\"\\/", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"\u2028\u2029", "é中😀", "\xff\xfe", "a\xe2\x80", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendJSONString(nil, s), encodeReflect(t, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzTaskMarshalJSON(f *testing.F) {
	f.Add("t-1", "text <&>", "w", "", []byte(`{"k": [1, "v"]}`), []byte(`"r"`), int64(0), int64(5))
	f.Add("", "\u2028\xff", "", "lease expired", []byte(nil), []byte(` null `), int64(1e15), int64(-3))
	f.Fuzz(func(t *testing.T, id, text, worker, errText string, metadata, result []byte, at, n int64) {
		for _, raw := range [][]byte{metadata, result} {
			if len(raw) > 0 && !json.Valid(raw) || !utf8.Valid(raw) {
				return // the server stores only JSON it has validated, in UTF-8
			}
		}
		when := time.UnixMilli(at % 1e15)
		checkTaskJSON(t, Task{ID: id, Text: text, AssignedTo: worker, Error: errText,
			Metadata: metadata, Result: result, Priority: int(n), Attempt: int(n >> 8), LeaseMs: n,
			RunAt: when, CreatedAt: when, LeaseExpiresAt: when.Add(time.Duration(n)), CompletedAt: when,
			DurationMs: n, ResultSize: n})
	})
}

// TestClaimResultAppendJSON: a claim's answer is what encoding/json writes
// for it, byte for byte, whether the first task is shared by Task and
// Tasks or not.
func TestClaimResultAppendJSON(t *testing.T) {
	at := time.Date(2025, 1, 19, 12, 45, 0, 123_000_000, time.UTC)
	task := func(id string) *Task {
		return &Task{ID: id, Queue: "q", Text: `<b> & "x"`, Status: StatusInProgress, Priority: 7,
			Metadata: json.RawMessage(`{"k": [1, 2]}`), AssignedTo: "w-1", Attempt: 1, MaxAttempts: 3,
			LeaseMs: 1000, LeaseExpiresAt: at.Add(time.Second), CreatedAt: at, UpdatedAt: at}
	}
	first, second := task("t-1"), task("t-2")
	copyOfFirst := *first
	for name, r := range map[string]ClaimResult{
		"nothing":     {},
		"one":         {Claimed: true, TaskID: first.ID, Task: first, Tasks: []*Task{first}},
		"two":         {Claimed: true, TaskID: first.ID, Task: first, Tasks: []*Task{first, second}},
		"a copy":      {Claimed: true, TaskID: first.ID, Task: first, Tasks: []*Task{&copyOfFirst, second}},
		"task alone":  {Claimed: true, Task: second},
		"a nil entry": {Claimed: true, Tasks: []*Task{nil, second}},
	} {
		got, err := r.AppendJSON([]byte("x"))
		if want := encodeReflect(t, r); err != nil || string(got) != "x"+string(want) {
			t.Errorf("%s: AppendJSON (%v)\n%s\nencoding/json writes\n%s", name, err, got, want)
		}
	}
	bad := ClaimResult{Claimed: true, Task: &Task{Metadata: json.RawMessage(`{"k": }`)}}
	if got, err := bad.AppendJSON(nil); err == nil && json.Valid(got) {
		t.Errorf("metadata that is not JSON: %s, valid JSON and no error", got)
	}
}
