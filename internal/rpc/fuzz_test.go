package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
)

// FuzzDecode feeds any body to the server and any JSON to the scanner. The
// server must answer a well-formed response (or none) without panicking;
// on valid JSON, the scanner must split objects and arrays exactly as
// encoding/json reads them. Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	s := NewServer(testMethods(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, body []byte) {
		checkResponse(t, body, s.handle(context.Background(), body))
		// On any text, the scanner must not panic or read out of bounds.
		pathAt(body, len(body)/2)
		_ = eachMember(body, func(k, v []byte) error { return nil })
		_ = eachElement(body, func(v []byte) error { return nil })
		if !json.Valid(body) {
			return
		}
		v := body[skipSpace(body, 0):]
		switch v[0] {
		case '{':
			checkMembers(t, v)
		case '[':
			checkElements(t, v)
		}
	})
}

// checkResponse checks the response parts out to body.
func checkResponse(t *testing.T, body []byte, out [][]byte) {
	t.Helper()
	if out == nil {
		return
	}
	resp := bytes.Join(out, nil)
	dec := json.NewDecoder(bytes.NewReader(resp))
	dec.UseNumber() // an id may be too large for a float64
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Fatalf("response %q is not JSON: %v", resp, err)
	}
	if !json.Valid(body) {
		if string(resp) != `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}` {
			t.Fatalf("body not JSON, response %s", resp)
		}
		return
	}
	objects, ok := v.([]any)
	if !ok {
		objects = []any{v}
	}
	for _, o := range objects {
		m, ok := o.(map[string]any)
		if !ok || m["jsonrpc"] != "2.0" || len(m) != 3 {
			t.Fatalf("response object %v", o)
		}
		_, hasResult := m["result"]
		e, hasError := m["error"].(map[string]any)
		if hasResult == hasError {
			t.Fatalf("response object %v: want one of result and error", o)
		}
		if hasError {
			n, _ := e["code"].(json.Number)
			code, err := n.Int64()
			if err != nil || !slices.Contains(specCodes, taskwire.Code(code)) {
				t.Fatalf("error %v: want a code of SPEC section 2", e)
			}
		}
	}
}

// specCodes are the error codes of SPEC section 2.
var specCodes = []taskwire.Code{
	taskwire.CodeParseError, taskwire.CodeInvalidRequest, taskwire.CodeMethodNotFound,
	taskwire.CodeInvalidParams, taskwire.CodeInternalError, taskwire.CodeRateLimited,
	taskwire.CodeUnavailable, taskwire.CodeNotAllowed, taskwire.CodeConflict, taskwire.CodeTooLarge,
}

// checkMembers compares eachMember with encoding/json on the object obj.
func checkMembers(t *testing.T, obj []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	err := eachMember(obj, func(k, v []byte) error {
		if !aliases(obj, k) || !aliases(obj, v) {
			t.Fatal("member not a sub-slice")
		}
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("scanner found a member after the last: %q", k)
		}
		key, err := unquote(k)
		if err != nil || key != tok {
			t.Fatalf("key %q (%v), encoding/json read %q", key, err, tok)
		}
		var want json.RawMessage
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, bytes.TrimSpace(want)) {
			t.Fatalf("value %q, encoding/json read %q", v, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("eachMember: %v", err)
	}
	if dec.More() {
		t.Fatal("scanner missed members")
	}
}

// checkElements compares eachElement with encoding/json on the array arr.
func checkElements(t *testing.T, arr []byte) {
	t.Helper()
	var want []json.RawMessage
	if err := json.Unmarshal(arr, &want); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := eachElement(arr, func(v []byte) error {
		got = append(got, v)
		return nil
	}); err != nil {
		t.Fatalf("eachElement: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d elements, encoding/json read %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
			t.Fatalf("element %d: %q, encoding/json read %q", i, got[i], want[i])
		}
	}
}

// fuzzParams has fields and bounds of every kind the wire types use.
type fuzzParams struct {
	Name  string          `json:"name" jsonschema:"minLength=1,maxLength=8,pattern=^[a-z]+$"`
	Count *int            `json:"count,omitempty" jsonschema:"minimum=0,maximum=100"`
	Ratio float64         `json:"ratio,omitempty" jsonschema:"exclusiveMinimum=0,maximum=1"`
	Tags  []string        `json:"tags,omitempty" jsonschema:"maxItems=4,uniqueItems=true,maxLength=5"`
	Kind  string          `json:"kind,omitempty" jsonschema:"enum=a,enum=b"`
	At    *taskwire.Time  `json:"at,omitempty"`
	Meta  json.RawMessage `json:"meta,omitempty" jsonschema:"oneof_type=object;null"`
	Blob  json.RawMessage `json:"blob,omitempty"`
	Inner *fuzzInner      `json:"inner,omitempty"`
	Flag  bool            `json:"flag,omitempty"`
}

type fuzzInner struct {
	Size int64           `json:"size" jsonschema:"minimum=-5,maximum=5"`
	Raw  json.RawMessage `json:"raw,omitempty"`
}

// FuzzParams decodes and validates any params object. An error must be a
// well-formed -32602; params it accepts must be valid UTF-8, within every
// bound, and decode exactly as encoding/json decodes them, with raw
// members aliasing the input. Seeds: testdata/fuzz/FuzzParams.
func FuzzParams(f *testing.F) {
	pt := newParamsType("fuzz", reflect.TypeFor[fuzzParams]())
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) || data[skipSpace(data, 0)] != '{' {
			return // the envelope refuses these before params are read
		}
		var got fuzzParams
		err := pt.decode(data, !utf8.Valid(data), reflect.ValueOf(&got).Elem())
		if err != nil {
			var e *taskwire.Error
			if !errors.As(err, &e) || e.Code != taskwire.CodeInvalidParams {
				t.Fatalf("error %v, want a -32602", err)
			}
			text, ok := strings.CutPrefix(e.Message, "Invalid params: ")
			if data, _ := e.Data.(map[string]any); !ok || data["validation"] != text {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8: %q", data)
		}
		want := decodeFuzzParams(t, data)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, encoding/json %+v", got, want)
		}
		checkFuzzBounds(t, data, &got)
	})
}

// decodeFuzzParams decodes accepted params data as encoding/json does,
// except that the integer fields take any number with a zero fraction
// (1.0, 1e1), as JSON Schema's integer does and the decoder must.
func decodeFuzzParams(t *testing.T, data []byte) fuzzParams {
	t.Helper()
	var n struct {
		fuzzParams
		Count *json.Number `json:"count,omitempty"`
		Inner *struct {
			fuzzInner
			Size json.Number `json:"size"`
		} `json:"inner,omitempty"`
	}
	if err := json.Unmarshal(data, &n); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
	}
	p := n.fuzzParams
	if n.Count != nil {
		c := int(integral(t, data, *n.Count, math.MinInt, math.MaxInt))
		p.Count = &c
	}
	if n.Inner != nil {
		p.Inner = &n.Inner.fuzzInner
		p.Inner.Size = integral(t, data, n.Inner.Size, math.MinInt64, math.MaxInt64)
	}
	return p
}

// integral returns the value of num, which accepted params data holds for
// an integer field, failing when it is not an integer within [lo, hi].
func integral(t *testing.T, data []byte, num json.Number, lo, hi int64) int64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(num.String())
	if !ok || !r.IsInt() || !r.Num().IsInt64() || r.Num().Int64() < lo || r.Num().Int64() > hi {
		t.Fatalf("accepted %q, whose %s is no integer of the field", data, num)
	}
	return r.Num().Int64()
}

// checkFuzzBounds checks the bounds of fuzzParams on accepted params p.
func checkFuzzBounds(t *testing.T, data []byte, p *fuzzParams) {
	t.Helper()
	n := utf8.RuneCountInString(p.Name)
	if n < 1 || n > 8 || strings.Trim(p.Name, "abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatalf("name %q", p.Name)
	}
	if p.Count != nil && (*p.Count < 0 || *p.Count > 100) {
		t.Fatalf("count %d", *p.Count)
	}
	if p.Ratio < 0 || p.Ratio > 1 {
		t.Fatalf("ratio %v", p.Ratio)
	}
	if len(p.Tags) > 4 || len(slices.Compact(slices.Sorted(slices.Values(p.Tags)))) != len(p.Tags) {
		t.Fatalf("tags %q", p.Tags)
	}
	if p.Kind != "" && p.Kind != "a" && p.Kind != "b" {
		t.Fatalf("kind %q", p.Kind)
	}
	if len(p.Meta) > 0 && p.Meta[0] != '{' && string(p.Meta) != "null" {
		t.Fatalf("meta %q", p.Meta)
	}
	if p.Inner != nil && (p.Inner.Size < -5 || p.Inner.Size > 5) {
		t.Fatalf("inner size %d", p.Inner.Size)
	}
	for _, raw := range [][]byte{p.Meta, p.Blob} {
		if len(raw) > 0 && !aliases(data, raw) {
			t.Fatalf("raw member %q is a copy", raw)
		}
	}
}

// FuzzRequest feeds any message to Request, which reads the first message
// of a WebSocket connection, and to Answer. The two agree: a message
// Request reads is answered as that request (no response for a
// notification, else one with its id and no -32700 or -32600 error); one
// it refuses is answered with -32700 or -32600, or is a batch. Seeds:
// testdata/fuzz/FuzzDecode, as FuzzDecode reads them.
func FuzzRequest(f *testing.F) {
	s := NewServer(testMethods(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	addSeeds(f, "FuzzDecode")
	f.Fuzz(func(t *testing.T, msg []byte) {
		id, method, params, ok := Request(msg)
		parts, release := s.Answer(context.Background(), msg)
		release()
		var out []byte // nil for no response
		if parts != nil {
			out = bytes.Join(parts, nil)
		}
		if json.Valid(msg) && msg[skipSpace(msg, 0)] == '[' {
			if ok {
				t.Fatalf("Request read the batch %q", msg)
			}
			return
		}
		var resp struct {
			ID    json.RawMessage `json:"id"`
			Error *taskwire.Error `json:"error"`
		}
		if out != nil {
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("response %q: %v", out, err)
			}
		}
		refused := resp.Error != nil && (resp.Error.Code == taskwire.CodeParseError || resp.Error.Code == taskwire.CodeInvalidRequest)
		switch {
		case !ok && !refused:
			t.Fatalf("Request refused %q, answered %q", msg, out)
		case ok && refused:
			t.Fatalf("Request read %q as %s %s %s, answered %q", msg, id, method, params, out)
		case ok && id == nil && out != nil:
			t.Fatalf("notification %q answered %q", msg, out)
		case ok && id != nil && !bytes.Equal(resp.ID, id):
			t.Fatalf("request %q with id %s answered %q", msg, id, out)
		}
	})
}

// addSeeds adds the inputs of another target's seed corpus, each a single
// []byte, to f.
func addSeeds(f *testing.F, target string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		text, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		if !ok {
			continue
		}
		q, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), ")")))
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		f.Add([]byte(q))
	}
}
