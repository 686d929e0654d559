package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/service"
)

// limitData checks that e is the -32000 of method's limit and returns its
// retryAfterMs.
func limitData(tb testing.TB, e *taskwire.Error, method string, limit int, window time.Duration) float64 {
	tb.Helper()
	if e.Code != taskwire.CodeRateLimited || e.Message == "" {
		tb.Fatalf("error %d %q, want %d", e.Code, e.Message, taskwire.CodeRateLimited)
	}
	data, _ := e.Data.(map[string]any)
	retry, _ := data["retryAfterMs"].(float64)
	want := map[string]any{"method": method, "limit": float64(limit), "windowMs": float64(window.Milliseconds())}
	got := map[string]any{}
	for k, v := range data {
		if k != "retryAfterMs" {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("rate limit data (-want +got):\n%s", diff)
	}
	if retry <= 0 || retry > float64(window.Milliseconds()) {
		tb.Errorf("retryAfterMs = %v, want in (0, %d]", data["retryAfterMs"], window.Milliseconds())
	}
	return retry
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskList: {N: 3, Per: time.Minute},
	}))
	for i := 0; i < 3; i++ {
		listTasks(t, b, params{})
	}
	// The 4th call within the window is refused and says when to retry.
	retry := limitData(t, callErr(t, b, taskwire.MethodTaskList, params{}), taskwire.MethodTaskList, 3, time.Minute)
	// Not before that.
	clk.Advance(time.Duration(retry)*time.Millisecond - time.Millisecond)
	limitData(t, callErr(t, b, taskwire.MethodTaskList, params{}), taskwire.MethodTaskList, 3, time.Minute)
	// Once it has passed, one more call goes through.
	clk.Advance(time.Millisecond)
	listTasks(t, b, params{})
	limitData(t, callErr(t, b, taskwire.MethodTaskList, params{}), taskwire.MethodTaskList, 3, time.Minute)
	// After a whole window the full allowance is back.
	clk.Advance(time.Minute)
	for i := 0; i < 3; i++ {
		listTasks(t, b, params{})
	}
	callErr(t, b, taskwire.MethodTaskList, params{})
	// Methods without a limit are not counted.
	for i := 0; i < 20; i++ {
		createTask(t, b, nil)
	}
}

func TestRateLimitBatch(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskCreate: {N: 3, Per: time.Minute},
	}))
	calls := make([]rpctest.Call, 5)
	for i := range calls {
		calls[i] = rpctest.Call{Method: taskwire.MethodTaskCreate, Params: params{"text": fmt.Sprint(i)}}
	}
	resps, err := b.cl.Batch(context.Background(), calls)
	if err != nil {
		t.Fatal(err)
	}
	var ok, limited int
	for _, r := range resps {
		switch {
		case r.Error == nil && r.Result != nil:
			ok++
		case r.Error != nil:
			limitData(t, r.Error, taskwire.MethodTaskCreate, 3, time.Minute)
			limited++
		}
	}
	// Each call of a batch counts.
	if ok != 3 || limited != 2 {
		t.Errorf("%d ok and %d limited in a batch of 5 against 3/min, want 3 and 2", ok, limited)
	}
	if n := taskCount(t, b); n != 3 {
		t.Errorf("%d tasks, want 3: a limited call must create nothing", n)
	}
}

func TestRateLimitChangesNothing(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskUpdate:   {N: 1, Per: time.Minute},
		taskwire.MethodTaskComplete: {N: 1, Per: time.Minute},
		taskwire.MethodTaskClaim:    {N: 1, Per: time.Hour},
	}))
	register(t, b, "w1")
	task := createTask(t, b, nil)
	other := createTask(t, b, nil)
	claimOne(t, b, "w1")

	call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"text": "first"}})
	before := getTask(t, b, task.ID)
	limitData(t, callErr(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"text": "second"}}),
		taskwire.MethodTaskUpdate, 1, time.Minute)
	wantUnchanged(t, b, before)

	// A limited claim takes nothing.
	limitData(t, callErr(t, b, taskwire.MethodTaskClaim, params{"workerId": "w1"}), taskwire.MethodTaskClaim, 1, time.Hour)
	wantUnchanged(t, b, other)

	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1})
	done := getTask(t, b, task.ID)
	// A retry of the completion is limited like any call, and changes nothing.
	limitData(t, callErr(t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1}),
		taskwire.MethodTaskComplete, 1, time.Minute)
	wantUnchanged(t, b, done)
}

func TestRateLimitPerWorker(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskClaim: {N: 2, Per: time.Minute},
	}))
	register(t, b, "w1")
	register(t, b, "w2")
	claim(t, b, "w1", nil)
	claim(t, b, "w1", nil)
	limitData(t, callErr(t, b, taskwire.MethodTaskClaim, params{"workerId": "w1"}), taskwire.MethodTaskClaim, 2, time.Minute)
	// Another worker has its own allowance, even from the same address.
	claim(t, b, "w2", nil)
	claim(t, b, "w2", nil)
	limitData(t, callErr(t, b, taskwire.MethodTaskClaim, params{"workerId": "w2"}), taskwire.MethodTaskClaim, 2, time.Minute)
}

func TestRateLimitZeroIsUnlimited(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskList: {N: 0, Per: time.Minute},
	}))
	for i := 0; i < 150; i++ {
		listTasks(t, b, params{})
	}
}

func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	// No limits configured: the contract's defaults apply.
	b, _ := withFakeClock(t, withRateLimits(nil))
	defaults := service.DefaultRateLimits()
	want := map[string]service.Limit{
		taskwire.MethodTaskComplete: {N: 100, Per: time.Minute},
		taskwire.MethodTaskClaim:    {N: 100, Per: time.Minute},
		taskwire.MethodTaskUpdate:   {N: 20, Per: time.Minute},
		taskwire.MethodTaskList:     {N: 100, Per: time.Minute},
	}
	if diff := cmp.Diff(want, defaults); diff != "" {
		t.Errorf("DefaultRateLimits (-want +got):\n%s", diff)
	}

	task := createTask(t, b, nil)
	for i := 0; i < 20; i++ {
		call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"priority": i}})
	}
	limitData(t, callErr(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"priority": 99}}),
		taskwire.MethodTaskUpdate, 20, time.Minute)
	if got := getTask(t, b, task.ID).Priority; got != 19 {
		t.Errorf("priority %d after a limited update, want 19", got)
	}

	for i := 0; i < 100; i++ {
		listTasks(t, b, params{})
	}
	limitData(t, callErr(t, b, taskwire.MethodTaskList, params{}), taskwire.MethodTaskList, 100, time.Minute)

	register(t, b, "w1")
	for i := 0; i < 100; i++ {
		claim(t, b, "w1", nil)
	}
	limitData(t, callErr(t, b, taskwire.MethodTaskClaim, params{"workerId": "w1"}), taskwire.MethodTaskClaim, 100, time.Minute)

	for i := 0; i < 100; i++ {
		callErr(t, b, taskwire.MethodTaskComplete, params{"id": "t-none", "workerId": "w1"})
	}
	limitData(t, callErr(t, b, taskwire.MethodTaskComplete, params{"id": "t-none", "workerId": "w1"}),
		taskwire.MethodTaskComplete, 100, time.Minute)

	// Every other method is unlimited.
	for i := 0; i < 150; i++ {
		getTask(t, b, task.ID)
	}
	for i := 0; i < 150; i++ {
		createTask(t, b, nil)
	}
}

// TestRateLimitEndpoints: the HTTP endpoints standing for a method, and
// system.health, count against that method's limit: the call over it is
// answered 429 with Retry-After and the -32000 of the method.
func TestRateLimitEndpoints(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskGet:         {N: 1, Per: time.Minute},
		taskwire.MethodSystemMetrics:   {N: 1, Per: time.Minute},
		taskwire.MethodEventsSubscribe: {N: 1, Per: time.Minute},
		taskwire.MethodSystemHealth:    {N: 1, Per: time.Minute},
	}))
	id := createTask(t, b, nil).ID
	for path, method := range map[string]string{
		"/v1/tasks/" + id + "/result": taskwire.MethodTaskGet,
		"/metrics":                    taskwire.MethodSystemMetrics,
		"/events?types=task.deleted":  taskwire.MethodEventsSubscribe,
	} {
		first := limitedGet(t, b, path)
		if first.StatusCode == http.StatusTooManyRequests {
			t.Errorf("GET %s: the first call was refused", path)
		}
		second := limitedGet(t, b, path)
		if second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s over its limit: %s, Retry-After %q; want 429 with Retry-After", path, second.Status, second.Header.Get("Retry-After"))
			continue
		}
		var body struct{ Error *taskwire.Error }
		if err := json.NewDecoder(second.Body).Decode(&body); err != nil || body.Error == nil {
			t.Fatalf("GET %s over its limit: body not a JSON-RPC error (%v)", path, err)
		}
		limitData(t, body.Error, method, 1, time.Minute)
	}
	call[taskwire.HealthResult](t, b, taskwire.MethodSystemHealth, params{})
	limitData(t, callErr(t, b, taskwire.MethodSystemHealth, params{}), taskwire.MethodSystemHealth, 1, time.Minute)
}

// limitedGet sends GET path and returns the response once its header is
// in (an event stream's body is closed unread with the test).
func limitedGet(t *testing.T, b *bundle, path string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
