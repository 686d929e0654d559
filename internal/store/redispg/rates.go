package redispg

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// rateWindow is the span over which Rates averages, and rateKeep how long
// a second's counts are kept.
const (
	rateWindow = 60
	rateKeep   = 2 * rateWindow * time.Second
)

// AddRates adds the claims and completions a process served to the
// counts of the second of now, shared by every process
// (store.RateSharer).
func (s *Store) AddRates(ctx context.Context, now time.Time, claimed, completed uint64) error {
	key := s.k.rates(now.Unix())
	return s.bounded(ctx, func(ctx context.Context) error {
		pipe := s.rdb.TxPipeline()
		pipe.HIncrBy(ctx, key, "c", int64(claimed))
		pipe.HIncrBy(ctx, key, "d", int64(completed))
		pipe.Expire(ctx, key, rateKeep)
		if _, err := pipe.Exec(ctx); err != nil {
			return s.redisErr(err)
		}
		return nil
	})
}

// Rates returns the claims and completions per second of every process
// over the rateWindow seconds before now (store.RateSharer).
func (s *Store) Rates(ctx context.Context, now time.Time) (claimed, completed float64, err error) {
	err = s.bounded(ctx, func(ctx context.Context) error {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, rateWindow)
		for i := range cmds {
			cmds[i] = pipe.HMGet(ctx, s.k.rates(now.Unix()-int64(i)), "c", "d")
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return s.redisErr(err)
		}
		var c, d int64
		for _, cmd := range cmds {
			var counts struct {
				C int64 `redis:"c"`
				D int64 `redis:"d"`
			}
			if err := cmd.Scan(&counts); err != nil {
				return err
			}
			c, d = c+counts.C, d+counts.D
		}
		claimed, completed = float64(c)/rateWindow, float64(d)/rateWindow
		return nil
	})
	return claimed, completed, err
}
