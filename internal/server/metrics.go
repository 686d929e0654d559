package server

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/service"
)

// metrics exports taskwire_* series: task counts by queue and status read
// from the store at scrape time, claim and completion counters, and the
// latency of every JSON-RPC call by method.
type metrics struct {
	requests *prometheus.HistogramVec
}

func newMetrics(ctx context.Context, reg *prometheus.Registry, svc *service.Service, log *slog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskwire_rpc_request_duration_seconds",
			Help:    "Latency of JSON-RPC calls by method and outcome (ok or the error code).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}, []string{"method", "code"}),
	}
	reg.MustRegister(m.requests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&storeCollector{ctx: context.WithoutCancel(ctx), svc: svc, log: log},
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "taskwire_tasks_claimed_total", Help: "Tasks claimed by workers through this process.",
		}, func() float64 { c, _ := svc.Rates(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "taskwire_tasks_completed_total", Help: "Tasks completed or failed through this process.",
		}, func() float64 { _, c := svc.Rates(); return float64(c) }),
	)
	return m
}

// observe records one call. The rpc server calls it with the name of a
// registered method or rpc.UnknownMethod, so a client cannot grow the
// series without bound.
func (m *metrics) observe(method string, d time.Duration, code taskwire.Code) {
	outcome := "ok"
	if code != 0 {
		outcome = strconv.Itoa(int(code))
	}
	m.requests.WithLabelValues(method, outcome).Observe(d.Seconds())
}

// storeCollector reads task and worker counts from the store per scrape.
type storeCollector struct {
	ctx context.Context // the server's, for store reads at scrape time
	svc *service.Service
	log *slog.Logger
}

var (
	tasksDesc = prometheus.NewDesc("taskwire_tasks",
		"Tasks by queue and status.", []string{"queue", "status"}, nil)
	oldestDesc = prometheus.NewDesc("taskwire_oldest_pending_age_seconds",
		"Age of the oldest pending task by queue.", []string{"queue"}, nil)
	workersDesc = prometheus.NewDesc("taskwire_workers",
		"Registered workers by status.", []string{"status"}, nil)
)

// taskStatuses are the statuses a task can have.
var taskStatuses = []taskwire.Status{taskwire.StatusPending, taskwire.StatusInProgress,
	taskwire.StatusCompleted, taskwire.StatusFailed}

// Describe sends the descriptors of the store's series.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- oldestDesc
	ch <- workersDesc
}

// Collect reads the counts; a store error leaves the series out, and is
// logged.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	st, err := c.svc.Store().Stats(ctx, now)
	if err != nil {
		c.log.Warn("metrics: read task counts", "err", err)
		return
	}
	for _, q := range st.Queues {
		// Every status of a queue, 0 included, so that a series does not
		// vanish when its last task moves on.
		for _, status := range taskStatuses {
			ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(q.ByStatus[status]), q.Queue, string(status))
		}
		if !q.OldestPending.IsZero() {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, now.Sub(q.OldestPending).Seconds(), q.Queue)
		}
	}
	for status, n := range st.Workers {
		ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n), string(status))
	}
}
