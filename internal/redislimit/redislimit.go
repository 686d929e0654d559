// Package redislimit is the rate limiter of distributed mode: every
// taskwire process sharing a Redis shares each principal's allowance.
// Each check is one round trip: the GCRA script of go-redis/redis_rate,
// run on Redis's own clock, so the processes' clocks need not agree.
package redislimit

import (
	"context"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store"
)

// Limiter is a service.Limiter kept in Redis. It is safe for concurrent
// use.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
	limits map[string]service.Limit
}

var _ service.Limiter = (*Limiter)(nil)

// New returns a Limiter enforcing limits (as service.Config.RateLimits:
// absent or N == 0 is unlimited) in client. Limiters with the same prefix
// share their counts; the keys are "rate:" + prefix + method + ":" +
// principal, each living no longer than its window.
func New(client redis.UniversalClient, prefix string, limits map[string]service.Limit) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(client), prefix: prefix, limits: limits}
}

// Allow counts one call of method by principal: nil when it is within the
// limit, the -32000 error of service.RateLimited when not, and a
// *store.UnavailableError (-32001) when Redis does not answer.
func (l *Limiter) Allow(ctx context.Context, method, principal string) error {
	lim, ok := l.limits[method]
	if !ok || lim.N == 0 {
		return nil
	}
	res, err := l.rl.Allow(ctx, l.prefix+method+":"+principal,
		redis_rate.Limit{Rate: lim.N, Burst: lim.N, Period: lim.Per})
	if err != nil {
		return &store.UnavailableError{Backend: "redis", Err: err}
	}
	if res.Allowed > 0 {
		return nil
	}
	return service.RateLimited(method, lim, res.RetryAfter)
}
