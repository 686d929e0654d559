package service

import (
	"context"
	"log/slog"

	"github.com/taskwire/taskwire/internal/auth"
)

// audit logs an admin action (task.assign, task.unassign, task.delete, a
// status change by task.update) that succeeded, naming the principal who
// made it; the task's events carry the same name (assignedBy, ...).
func (s *Service) audit(ctx context.Context, action, taskID string, attrs ...slog.Attr) {
	c := CallerFrom(ctx)
	if !s.cfg.AuthRequired {
		c.Role = auth.RoleAdmin // with auth off every caller is one
	}
	all := append([]slog.Attr{slog.String("action", action), slog.String("task", taskID),
		slog.String("by", principal(ctx, "")), slog.String("role", string(c.Role)),
		slog.String("addr", c.Addr)}, attrs...)
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", all...)
}
