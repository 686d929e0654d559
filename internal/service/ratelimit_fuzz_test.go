package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
)

// FuzzParseRateLimit feeds any text to the --rate-limit parser. It never
// panics; a spec it accepts names a method that can be limited, with
// N >= 0 and a positive DURATION, reads back the same from its own
// String, and an in-process limiter of it lets a first call through.
// Seeds: testdata/fuzz/FuzzParseRateLimit.
func FuzzParseRateLimit(f *testing.F) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		method, l, err := ParseRateLimit(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rate limit ") {
				t.Fatalf("error %q does not say what it refused", err)
			}
			return
		}
		if _, ok := methodAccess[method]; !ok || l.N < 0 || l.Per <= 0 {
			t.Fatalf("accepted %q as %s=%v", spec, method, l)
		}
		m2, l2, err := ParseRateLimit(method + "=" + l.String())
		if err != nil || m2 != method || l2 != l {
			t.Fatalf("%q read as %s=%v, which reads back as %s=%v (%v)", spec, method, l, m2, l2, err)
		}
		lim := NewMemoryLimiter(map[string]Limit{method: l}, func() time.Time { return t0 })
		if err := lim.Allow(context.Background(), method, "p"); err != nil {
			t.Fatalf("%s=%v refused a first call: %v", method, l, err)
		}
		if err := lim.Allow(context.Background(), method, "p"); err != nil {
			var e *taskwire.Error
			if !errors.As(err, &e) || e.Code != taskwire.CodeRateLimited || e.Data.(map[string]any)["retryAfterMs"].(int64) < 1 {
				t.Fatalf("%s=%v refused a second call with %v", method, l, err)
			}
		}
	})
}
