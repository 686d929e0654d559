package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/taskwire/taskwire"
)

// Limit allows N calls per Per for one principal; N == 0 is unlimited.
type Limit struct {
	N   int
	Per time.Duration
}

// String writes the limit as N/DURATION.
func (l Limit) String() string { return fmt.Sprintf("%d/%s", l.N, l.Per) }

// DefaultRateLimits are the contract's defaults (SPEC section 6): every
// method not listed is unlimited.
func DefaultRateLimits() map[string]Limit {
	return map[string]Limit{
		taskwire.MethodTaskComplete: {N: 100, Per: time.Minute},
		taskwire.MethodTaskClaim:    {N: 100, Per: time.Minute},
		taskwire.MethodTaskUpdate:   {N: 20, Per: time.Minute},
		taskwire.MethodTaskList:     {N: 100, Per: time.Minute},
	}
}

// ParseRateLimit reads METHOD=N/DURATION (task.claim=600/1m); N = 0 makes
// the method unlimited.
func ParseRateLimit(s string) (method string, l Limit, err error) {
	method, spec, ok := strings.Cut(s, "=")
	n, per, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 || method == "" {
		return "", Limit{}, fmt.Errorf("rate limit %q: want METHOD=N/DURATION, e.g. task.claim=600/1m", s)
	}
	if _, known := methodAccess[method]; !known {
		return "", Limit{}, fmt.Errorf("rate limit %q: no method %s can be limited (methods: %s)", s, method, strings.Join(limitable(), ", "))
	}
	if _, err := fmt.Sscanf(n, "%d", &l.N); err != nil || l.N < 0 || fmt.Sprint(l.N) != n {
		return "", Limit{}, fmt.Errorf("rate limit %q: N must be a whole number >= 0", s)
	}
	if l.Per, err = time.ParseDuration(per); err != nil || l.Per <= 0 {
		return "", Limit{}, fmt.Errorf("rate limit %q: DURATION must be positive, e.g. 1m or 10s", s)
	}
	return method, l, nil
}

// limitable lists the methods a rate limit can name, sorted.
func limitable() []string {
	var names []string
	for m := range methodAccess {
		names = append(names, m)
	}
	slices.Sort(names)
	return names
}

// Limiter decides whether a principal may make one more call of a
// method. Allow returns nil when it may (the call is counted), the -32000
// error of RateLimited when it may not, and any other error when the
// limiter cannot tell (a backend down); the call is then refused with that
// error. Implementations are safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, method, principal string) error
}

// RateLimited is the -32000 error of a call over limit l of method: data
// {method, limit, windowMs, retryAfterMs}, retryAfterMs at least 1.
func RateLimited(method string, l Limit, retryAfter time.Duration) *taskwire.Error {
	retry := max(retryAfter.Milliseconds(), 1)
	return &taskwire.Error{
		Code:    taskwire.CodeRateLimited,
		Message: fmt.Sprintf("Rate limit exceeded for %s: %d calls per %s", method, l.N, l.Per),
		Data: map[string]any{"method": method, "limit": l.N,
			"windowMs": l.Per.Milliseconds(), "retryAfterMs": retry},
	}
}

// limiter is the in-process Limiter: one token bucket per method and
// principal. A bucket holds N tokens and refills at N per Per: a principal
// idle for a window may make N calls at once, then N per Per sustained
// (so up to 2N in the first window after a quiet spell).
type limiter struct {
	limits  map[string]Limit
	now     func() time.Time
	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	calls   int
}

type bucketKey struct{ method, principal string }

type bucket struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

// idleBucket is how long an unused bucket is kept at least; one whose
// window is longer is kept for its window.
const idleBucket = 10 * time.Minute

// NewMemoryLimiter returns the in-process Limiter of limits, on the clock
// now. Its counts are this process's alone.
func NewMemoryLimiter(limits map[string]Limit, now func() time.Time) Limiter {
	return &limiter{limits: limits, now: now, buckets: map[bucketKey]*bucket{}}
}

// Allow takes one token of method for principal, or returns the -32000
// error that says when to retry.
func (l *limiter) Allow(_ context.Context, method, principal string) error {
	lim, ok := l.limits[method]
	if !ok || lim.N == 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	k := bucketKey{method, principal}
	b := l.buckets[k]
	if b == nil {
		every := rate.Every(lim.Per / time.Duration(lim.N))
		b = &bucket{lim: rate.NewLimiter(every, lim.N)}
		l.buckets[k] = b
	}
	b.lastUsed = now
	r := b.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	r.CancelAt(now)
	return RateLimited(method, lim, wait)
}

// sweep drops idle buckets every few thousand calls; it runs under l.mu.
func (l *limiter) sweep(now time.Time) {
	l.calls++
	if l.calls%4096 != 0 {
		return
	}
	for k, b := range l.buckets {
		// A bucket idle for its whole window is full again: dropping it
		// forgets nothing.
		if now.Sub(b.lastUsed) > max(idleBucket, l.limits[k.method].Per) {
			delete(l.buckets, k)
		}
	}
}
