package service

import (
	"context"

	"github.com/taskwire/taskwire"
)

// AllowSubscribe checks that the caller of ctx may open an event
// subscription (events.subscribe): its role allows it (admin, producer)
// and that method's rate limit does.
func (s *Service) AllowSubscribe(ctx context.Context) error {
	if err := s.Authorize(ctx, taskwire.MethodEventsSubscribe); err != nil {
		return err
	}
	return s.limit(ctx, taskwire.MethodEventsSubscribe, "")
}
