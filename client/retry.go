package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"
)

// resend says which failures of a call may be answered by sending it again.
type resend int

const (
	// sendOnce: never; a second send could act twice.
	sendOnce resend = iota
	// onRefusal: only when the server refused the call (-32000, -32001).
	// A claim is such a call: when its answer is lost, the tasks it took
	// stay held for the worker, and a second claim would take more.
	onRefusal
	// onFailure: on a refusal, a gateway's error or a failed connection;
	// for calls whose repetition acts as the first did.
	onFailure
)

// resendIf returns onFailure when safe, else sendOnce.
func resendIf(safe bool) resend {
	if safe {
		return onFailure
	}
	return sendOnce
}

// allows reports whether a call that failed with err may be sent again.
func (r resend) allows(ctx context.Context, err error) bool {
	switch r {
	case onRefusal:
		return ctx.Err() == nil && (IsRateLimited(err) || IsUnavailable(err))
	case onFailure:
		return retryable(ctx, err)
	}
	return false
}

// retry runs fn until it succeeds, fails with an error that r does not
// allow to retry, or MaxAttempts is reached. Between attempts it waits the
// server's retryAfterMs, or an exponential backoff with jitter, and gives
// up at once when ctx would end before the next attempt.
func (c *Client) retry(ctx context.Context, r resend, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= c.opts.MaxAttempts || !r.allows(ctx, err) {
			return err
		}
		if !c.sleep(ctx, c.backoff(attempt, err)) {
			return err
		}
	}
}

// retryable reports whether err is worth another attempt of a call whose
// repetition acts as the first did:
// rate limits, unavailable backends, a gateway's error, or a failed
// connection (not the caller's own context ending, nor a request that
// cannot be sent).
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if IsRateLimited(err) || IsUnavailable(err) {
		return true
	}
	var h *HTTPError
	if errors.As(err, &h) {
		switch h.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var e *Error
	var u *unsendableError
	return !errors.As(err, &e) && !errors.Is(err, errNoResponse) && !errors.As(err, &u)
}

// lostAnswer reports whether err leaves unknown whether the server acted
// on the call: the connection failed, or a gateway answered instead.
func lostAnswer(ctx context.Context, err error) bool {
	return retryable(ctx, err) && !IsRateLimited(err) && !IsUnavailable(err)
}

// backoff returns the wait before attempt+1: the server's retryAfterMs
// plus up to MinBackoff of jitter, else MinBackoff·2^(attempt-1) capped at
// MaxBackoff, jittered down to half of it.
func (c *Client) backoff(attempt int, err error) time.Duration {
	if d, ok := RetryAfter(err); ok {
		return d + rand.N(c.opts.MinBackoff)
	}
	d := c.opts.MinBackoff << min(attempt-1, 20)
	if d <= 0 || d > c.opts.MaxBackoff {
		d = c.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d and reports true, or reports false at once when ctx ends
// first or its deadline leaves no time for another attempt.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
