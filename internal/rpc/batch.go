package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

var errBatchTooLong = errors.New("batch too long")

// batch runs the requests of the array arr, at most BatchConcurrency at a
// time, and returns the parts of the array of their responses (in request
// order, though JSON-RPC allows any), or nil when all were notifications.
// An empty batch, or one longer than MaxBatch, is answered by one error
// object, not an array.
func (s *Server) batch(ctx context.Context, arr []byte, checkUTF8 bool) [][]byte {
	var entries [][]byte
	err := eachElement(arr, func(v []byte) error {
		if len(entries) == s.opts.MaxBatch {
			return errBatchTooLong
		}
		entries = append(entries, v)
		return nil
	})
	switch {
	case errors.Is(err, errBatchTooLong):
		e := invalidRequest("a batch holds at most %d requests", s.opts.MaxBatch)
		e.Data = map[string]any{"field": "batch", "limit": s.opts.MaxBatch}
		return [][]byte{errorResponse(nil, e)}
	case err != nil:
		return [][]byte{errorResponse(nil, parseError())}
	case len(entries) == 0:
		return [][]byte{errorResponse(nil, invalidRequest("empty batch"))}
	}

	// A few goroutines take the requests in turn: one per request would
	// grow a fresh stack for each (the schema validator runs deep).
	responses := make([][][]byte, len(entries))
	ctx = context.WithValue(ctx, batchKey{}, true)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(s.opts.BatchConcurrency, len(entries)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(entries); i = int(next.Add(1) - 1) {
				responses[i] = s.answer(ctx, entries[i], checkUTF8)
			}
		})
	}
	wg.Wait()

	parts := make([][]byte, 0, 2*len(responses)+1)
	for _, r := range responses {
		if r == nil {
			continue
		}
		sep := []byte{','}
		if len(parts) == 0 {
			sep[0] = '['
		}
		parts = append(append(parts, sep), r...)
	}
	if len(parts) == 0 {
		return nil
	}
	return append(parts, []byte{']'})
}
