package stack

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterInfo returns the fields of CLUSTER INFO of the node at addr.
func RedisClusterInfo(ctx context.Context, addr string) (map[string]string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: checkTimeout})
	defer cl.Close()
	s, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster info of %s: %w", addr, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// FormRedisCluster joins the six Redis nodes of TOPOLOGY=cluster into one
// cluster of three masters with a replica each (once: a formed cluster is left
// alone) and waits until every node reports cluster_state:ok.
func (s *Stack) FormRedisCluster(ctx context.Context) error {
	var addrs []string
	for i := 1; i <= 2*ClusterSize; i++ {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", s.ClusterPorts.Redis(i)))
	}
	info, err := RedisClusterInfo(ctx, addrs[0])
	if err != nil {
		return err
	}
	if info["cluster_known_nodes"] != fmt.Sprint(len(addrs)) {
		s.say("redis: creating the Redis Cluster of %s", strings.Join(addrs, " "))
		args := append([]string{"--cluster", "create"}, addrs...)
		args = append(args, "--cluster-replicas", "1", "--cluster-yes")
		if b, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, b)
		}
	}
	deadline := time.Now().Add(s.Timeout)
	for _, addr := range addrs {
		for {
			info, err := RedisClusterInfo(ctx, addr)
			if err == nil && info["cluster_state"] == "ok" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redis cluster: %s is not cluster_state:ok after %s (%v)", addr, s.Timeout, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	s.say("redis: cluster_state:ok on all %d nodes", len(addrs))
	return nil
}
