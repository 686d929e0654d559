package service

import (
	"context"

	"github.com/taskwire/taskwire"
)

// Admit checks that the caller of ctx may call method outside JSON-RPC (an
// HTTP endpoint standing for it, or a subscription): its role allows it
// and that method's rate limit does. It is the check every method runs
// first.
func (s *Service) Admit(ctx context.Context, method string) error {
	return s.limit(ctx, method, "")
}

// AllowSubscribe is Admit for events.subscribe.
func (s *Service) AllowSubscribe(ctx context.Context) error {
	return s.Admit(ctx, taskwire.MethodEventsSubscribe)
}
