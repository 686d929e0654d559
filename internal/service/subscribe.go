package service

import (
	"context"

	"github.com/taskwire/taskwire"
)

// AllowSubscribe checks that the caller of ctx may open an event
// subscription (events.subscribe): it applies that method's rate limit.
func (s *Service) AllowSubscribe(ctx context.Context) error {
	return s.limit(ctx, taskwire.MethodEventsSubscribe, "")
}
