package redispg

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/storetest"
)

// TestCluster runs the claim and complete core of the suite on a Redis
// Cluster of three masters started for the test on loopback ports. Each
// store's keys carry their own hash tag, so the stores of the suite land
// on different masters.
func TestCluster(t *testing.T) {
	t.Parallel()
	rdb := startCluster(t)
	storetest.RunCore(t, func(t *testing.T) store.Store {
		env := newTestEnv(t) // schema, and its prefix, unused on the single node
		env.rdb = rdb
		return env.open(t, Options{})
	})
}

// startCluster starts three redis-server processes in cluster mode in a
// temporary directory, joins them with redis-cli --cluster create, and
// returns a cluster client; all is stopped in cleanup. Without the
// binaries the test is skipped loudly, or fails under CI=true or
// TASKWIRE_REQUIRE_SERVICES=1.
func startCluster(t *testing.T) redis.UniversalClient {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		msg := "the Redis Cluster test needs redis-server and redis-cli on PATH (apt-get install redis-server)"
		if os.Getenv("CI") == "true" || os.Getenv("TASKWIRE_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	dir := t.TempDir()
	var addrs []string
	for _, port := range freeClusterPorts(t, 3) {
		p := strconv.Itoa(port)
		cmd := exec.Command(server, "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-"+p+".conf", "--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, p+".log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, "127.0.0.1:"+p)
	}
	for _, a := range addrs {
		waitRedis(t, a)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { rdb.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		info, err := rdb.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && clusterReady(rdb, addrs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready after 30s: %v %s", err, info)
		}
	}
	return rdb
}

// clusterReady reports whether every node sees the whole cluster.
func clusterReady(rdb *redis.ClusterClient, addrs []string) bool {
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		info, err := c.ClusterInfo(context.Background()).Result()
		c.Close()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
	}
	return rdb.Ping(context.Background()).Err() == nil
}

// freeClusterPorts finds n ports that are free, and whose cluster bus
// ports (port + 10000) are free too.
func freeClusterPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		ports = append(ports, port)
	}
	return ports
}

// waitRedis waits until a Redis server answers at addr.
func waitRedis(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not start", addr)
		}
	}
}
