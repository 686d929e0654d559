package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisLogsJoinTheLog checks that what go-redis logs (a dial that
// failed) goes through the server's logger, so that with --log-format
// json every line of the log is one JSON object. Not parallel: go-redis
// has one logger per process.
func TestRedisLogsJoinTheLog(t *testing.T) {
	var buf bytes.Buffer
	routeRedisLogs(newLogger("json", &buf))
	t.Cleanup(func() { routeRedisLogs(slog.Default()) })

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond,
		DialerRetries: 1, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	out := strings.TrimSpace(buf.String())
	if !strings.Contains(out, "failed to dial") {
		t.Fatalf("log %q, want go-redis's failed dial in it", out)
	}
	for _, line := range strings.Split(out, "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
		}
	}
}
