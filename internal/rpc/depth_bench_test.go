package rpc

import (
	"bytes"
	"testing"
)

// BenchmarkDepthLargeResult measures the depth check on a 64 MiB result:
// one string, and an array of numbers (every byte looked at).
func BenchmarkDepthLargeResult(b *testing.B) {
	str := append(append([]byte(`{"result":"`), bytes.Repeat([]byte("x"), 64<<20)...), `"}`...)
	arr := append(append([]byte(`{"result":[`), bytes.Repeat([]byte("12345,"), 64<<20/6)...), `1]}`...)
	for _, c := range []struct {
		name string
		body []byte
	}{{"string", str}, {"numbers", arr}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if checkDepth(c.body) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
