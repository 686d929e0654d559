package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// addParams are the params of the benchmarks' trivial method, with bounds
// so that validation is part of the cost.
type addParams struct {
	A int `json:"a" jsonschema:"minimum=0,maximum=1000"`
	B int `json:"b" jsonschema:"minimum=0,maximum=1000"`
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// benchServe measures ServeHTTP on body, a request of calls calls, with no
// network: the transport's own cost (read, parse, validate, encode).
func benchServe(b *testing.B, body []byte, calls int) {
	s := NewServer([]Method{Register("add", "Adds.", func(_ context.Context, p *addParams) (int, error) {
		return p.A + p.B, nil
	})}, Options{})
	w := &discardWriter{header: http.Header{}}
	req, err := http.NewRequest(http.MethodPost, "/rpc", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		s.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*calls), "ns/call")
}

// BenchmarkServeSingle measures one call per request.
func BenchmarkServeSingle(b *testing.B) {
	benchServe(b, []byte(`{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}`), 1)
}

// BenchmarkServeBatch100 measures a batch of 100 calls.
func BenchmarkServeBatch100(b *testing.B) {
	calls := make([]string, 100)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"add","params":{"a":%d,"b":2},"id":%d}`, i, i)
	}
	benchServe(b, []byte("["+strings.Join(calls, ",")+"]"), 100)
}
