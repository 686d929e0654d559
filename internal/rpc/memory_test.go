package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"unsafe"

	"github.com/taskwire/taskwire"
)

// aliases reports whether sub lies inside the memory of b.
func aliases(b, sub []byte) bool {
	if len(b) == 0 || len(sub) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= start && p+uintptr(len(sub)) <= start+uintptr(len(b))
}

// completeBody returns a task.complete request whose result is the JSON
// value made of open, size bytes of fill, and close.
func completeBody(open string, fill byte, size int, close string) []byte {
	head := `{"jsonrpc":"2.0","method":"task.complete","params":{"id":"t-1","result":` + open
	tail := close + `,"workerId":"w-1"},"id":1}`
	b := make([]byte, 0, len(head)+size+len(tail))
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{fill}, size)...)
	return append(b, tail...)
}

// TestLargeResultAliasesBody checks that a 64 MiB result, a string or an
// array, reaches the method as a sub-slice of the request body.
func TestLargeResultAliasesBody(t *testing.T) {
	t.Parallel()
	const size = 64 << 20
	var result []byte
	m := Register(taskwire.MethodTaskComplete, "", func(_ context.Context, p *taskwire.CompleteParams) (int, error) {
		result = p.Result
		return len(p.Result), nil
	})
	s := NewServer([]Method{m}, Options{})
	for _, body := range [][]byte{
		completeBody(`"`, 'x', size, `"`),
		completeBody(`[`, ' ', size, `0]`),
	} {
		result = nil
		out := s.handle(context.Background(), body)
		if len(out) != 1 || !bytes.HasPrefix(out[0], []byte(`{"jsonrpc":"2.0","result":`)) {
			t.Fatalf("response %.200s", bytes.Join(out, nil))
		}
		if len(result) < size {
			t.Fatalf("result of %d bytes, want more than %d", len(result), size)
		}
		if !aliases(body, result) {
			t.Error("result is a copy, want a sub-slice of the body")
		}
	}
}

// TestLargeResultMemory checks that serving a large task.complete over
// HTTP allocates, in all, the body and little more: the result is never
// copied or decoded. Not parallel: it measures the process's allocations.
func TestLargeResultMemory(t *testing.T) {
	sizes := []int{64 << 20}
	if !testing.Short() {
		sizes = append(sizes, 256<<20)
	}
	srv := httptest.NewServer(NewServer(testMethods(), Options{}))
	defer srv.Close()
	for _, size := range sizes {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			body := completeBody(`"`, 'x', size, `"`)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if want := fmt.Sprintf(`{"jsonrpc":"2.0","result":%d,"id":1}`, size+2); string(out) != want {
				t.Fatalf("response %.200s, want %s", out, want)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("request of %d MiB allocated %.1f MiB", len(body)>>20, float64(alloc)/(1<<20))
			if limit := uint64(size) * 5 / 4; alloc > limit {
				t.Errorf("allocated %d bytes for a %d-byte result, want at most %d", alloc, size, limit)
			}
		})
	}
}
