package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// routeRedisLogs sends what go-redis logs (failed dials of its pool,
// mostly) to logger as warnings, instead of its own plain lines on
// stderr, which would break a JSON log. go-redis has one logger per
// process.
func routeRedisLogs(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

// redisLogger is go-redis's Logging over a *slog.Logger.
type redisLogger struct{ log *slog.Logger }

// Printf logs one message of go-redis as a warning whose detail is the
// message.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	detail := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.log.WarnContext(ctx, "redis client", "detail", detail)
}
