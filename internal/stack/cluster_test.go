package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// clusterBase returns the first port of a run of 40 free ports whose Redis bus
// ports (+10000) are free too ($WIKIFLOW_TEST_CLUSTER_BASE_PORT when set).
func clusterBase(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("WIKIFLOW_TEST_CLUSTER_BASE_PORT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("WIKIFLOW_TEST_CLUSTER_BASE_PORT=%s: %v", s, err)
		}
		return n
	}
	free := func(p int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
		}
		return err == nil
	}
	for base := 21000 + os.Getpid()%200*40; base < 55000; base += 40 {
		ok := true
		for p := base; p < base+40 && ok; p++ {
			ok = free(p) && (p < base+20 || p >= base+26 || free(p+10000))
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of 40 free ports")
	return 0
}

// jsMeta is the part of nats-server's /jsz that names the JetStream meta group.
type jsMeta struct {
	Meta struct {
		Leader      string `json:"leader"`
		ClusterSize int    `json:"cluster_size"`
		Replicas    []struct {
			Name string `json:"name"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// checkNATSCluster waits until every nats-server's /jsz reports a meta group of
// three with a leader and the two other servers as peers.
func checkNATSCluster(ctx context.Context, t *testing.T, c Config) {
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; i <= ClusterSize; i++ {
		_, _, mon := c.ClusterPorts.NATS(i)
		for {
			var m jsMeta
			resp, err := get(ctx, mon, "/jsz")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
			}
			if err == nil && m.Meta.Leader != "" && m.Meta.ClusterSize == 3 && len(m.Meta.Replicas) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("nats%d: /jsz has no meta group of 3 with a leader: %+v (%v)", i, m.Meta, err)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// checkKafkaCluster checks that each node's metadata lists the three brokers.
func checkKafkaCluster(ctx context.Context, t *testing.T, c Config) {
	for i := 1; i <= ClusterSize; i++ {
		p, _, _ := c.ClusterPorts.Kafka(i)
		conn, err := kafka.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("kafka%d: %v", i, err)
			continue
		}
		brokers, err := conn.Brokers()
		conn.Close()
		if err != nil || len(brokers) != 3 {
			t.Errorf("kafka%d: metadata lists %d brokers (%v), want 3: %+v", i, len(brokers), err, brokers)
		}
	}
}

// checkRedisCluster checks that each node sees a healthy cluster of 3 masters
// among 6 nodes.
func checkRedisCluster(ctx context.Context, t *testing.T, c Config) {
	for i := 1; i <= 2*ClusterSize; i++ {
		info, err := RedisClusterInfo(ctx, fmt.Sprintf("127.0.0.1:%d", c.ClusterPorts.Redis(i)))
		if err != nil || info["cluster_state"] != "ok" || info["cluster_size"] != "3" || info["cluster_known_nodes"] != "6" {
			t.Errorf("redis%d: CLUSTER INFO state %q, size %q, nodes %q (%v); want ok, 3, 6", i,
				info["cluster_state"], info["cluster_size"], info["cluster_known_nodes"], err)
		}
	}
}

// TestClusterInfraDown starts TOPOLOGY=cluster's brokers on free ports in a fresh
// folder, checks that each kind forms one cluster (NATS a JetStream meta group
// of three, Kafka three brokers in its metadata, Redis cluster_state:ok with
// three masters) and that down leaves nothing running and no port open.
func TestClusterInfraDown(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("starts three Kafka JVMs; skipped with -short")
	}
	root, err := FindRoot("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	freePorts(t, &c)
	c.Topology, c.ClusterPorts = "cluster", ClusterPorts{Base: clusterBase(t)}
	c.KafkaJVMOpts = append([]string(nil), ClusterKafkaJVMOpts...)
	ctx, s, _ := startInfra(t, c, 3*time.Minute)
	checkNATSCluster(ctx, t, c)
	checkKafkaCluster(ctx, t, c)
	checkRedisCluster(ctx, t, c)
	unset := c
	unset.Topology = ""
	if got := unset.runningTopology(); got != "cluster" {
		t.Errorf("with TOPOLOGY unset and the cluster's brokers running, the topology is %q, want cluster", got)
	}
	if err := s.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := s.Leftovers(); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
	for _, name := range c.BrokerNames() {
		for _, p := range c.PortsOf(name) {
			if PortOpen(p) {
				t.Errorf("%s's port %d is still open after down", name, p)
			}
		}
	}
	if got := unset.runningTopology(); got != "single" {
		t.Errorf("with nothing running, the topology is %q, want single", got)
	}
}
