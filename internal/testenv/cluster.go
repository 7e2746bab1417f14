package testenv

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
)

// EnvRedisCluster names a running Redis Cluster for tests: a comma-separated
// list of redis:// URLs of its nodes. Unset, RedisCluster starts one.
const EnvRedisCluster = "WIKIFLOW_TEST_REDIS_CLUSTER"

// RedisCluster returns the node URLs (comma-separated) of a Redis Cluster of 3
// masters and 3 replicas: the one EnvRedisCluster names, or else one it starts
// with redis-server and redis-cli on free ports in a temporary directory and
// stops when the test ends. Without redis-server it fails under CI and skips
// otherwise.
func RedisCluster(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvRedisCluster); u != "" {
		return u
	}
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(t, "a Redis Cluster (set "+EnvRedisCluster+")", err)
		}
	}
	dir := t.TempDir()
	var addrs, urls []string
	for i := range 6 {
		port := clusterPort(t)
		node := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(node, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(node, "nodes.conf"),
			"--dir", node, "--save", "", "--appendonly", "no", "--maxmemory", "64mb")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := "127.0.0.1:" + strconv.Itoa(port)
		addrs, urls = append(addrs, addr), append(urls, "redis://"+addr)
		waitPing(t, addr)
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitClusterOK(t, addrs)
	return strings.Join(urls, ",")
}

// clusterPort returns a free port whose cluster bus port (+10000) is free too.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port > 55000 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			_ = b.Close()
			return port
		}
	}
	t.Fatal("no free port pair for a Redis Cluster node")
	return 0
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClusterOK waits until every node reports cluster_state:ok.
func waitClusterOK(t testing.TB, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatal(fmt.Errorf("redis cluster node %s not ok: %v %s", addr, err, info))
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
}
