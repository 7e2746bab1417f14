package compose

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

const clusterPath = "cluster.yml"

// loadCluster loads the cluster project with its sample profile, through the
// Compose specification's own loader.
func loadCluster(t *testing.T) file {
	t.Helper()
	p, err := loadProject(clusterPath, nil, "sample")
	if err != nil {
		t.Fatalf("compose-go loader refuses %s: %v", clusterPath, err)
	}
	return fromProject(t, p)
}

// named returns the services whose names start with prefix, sorted.
func named(f file, prefix string) []string {
	var out []string
	for name := range f.Services {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// list joins each name with format, comma-separated, in order.
func list(names []string, format string) string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf(format, n))
	}
	return strings.Join(out, ",")
}

// argAfter returns the argument following flag in cmd ("" when absent).
func argAfter(cmd []string, flag string) string {
	if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

func TestClusterKafkaIsOneQuorumOfThree(t *testing.T) {
	f, single := loadCluster(t), loadCompose(t)
	nodes := named(f, "kafka-")
	if len(nodes) != 3 {
		t.Fatalf("Kafka nodes %v, want 3", nodes)
	}
	var voters []string
	ids, clusters := map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		s := f.Services[n]
		env := s.Environment
		if s.Image != single.Services["kafka"].Image {
			t.Errorf("%s: image %q, the single-node stack runs %q", n, s.Image, single.Services["kafka"].Image)
		}
		ids[env["KAFKA_NODE_ID"]] = true
		clusters[env["CLUSTER_ID"]] = true
		voters = append(voters, env["KAFKA_NODE_ID"]+"@"+n+":9093")
		if env["KAFKA_PROCESS_ROLES"] != "broker,controller" {
			t.Errorf("%s: roles %q, want broker,controller", n, env["KAFKA_PROCESS_ROLES"])
		}
		if want := "INTERNAL://" + n + ":19092"; env["KAFKA_ADVERTISED_LISTENERS"] != want {
			t.Errorf("%s: advertises %q, want %q", n, env["KAFKA_ADVERTISED_LISTENERS"], want)
		}
		for k, want := range map[string]string{"KAFKA_DEFAULT_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2", "KAFKA_NUM_PARTITIONS": "6"} {
			if env[k] != want {
				t.Errorf("%s: %s=%q, want %q", n, k, env[k], want)
			}
		}
	}
	if len(ids) != 3 || len(clusters) != 1 {
		t.Errorf("node ids %v and cluster ids %v: want 3 distinct ids in one cluster", ids, clusters)
	}
	for _, n := range nodes {
		if got := f.Services[n].Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"]; got != strings.Join(voters, ",") {
			t.Errorf("%s: voters %q, want %q", n, got, strings.Join(voters, ","))
		}
	}
}

func TestClusterNATSServersRouteToEachOther(t *testing.T) {
	f, single := loadCluster(t), loadCompose(t)
	servers := named(f, "nats-")
	if len(servers) != 3 {
		t.Fatalf("NATS servers %v, want 3", servers)
	}
	routes, names := list(servers, "nats://%s:6222"), map[string]bool{}
	for _, n := range servers {
		s := f.Services[n]
		if s.Image != single.Services["nats"].Image {
			t.Errorf("%s: image %q, the single-node stack runs %q", n, s.Image, single.Services["nats"].Image)
		}
		names[argAfter(s.Command, "-n")] = true
		if !slices.Contains(s.Command, "-js") || argAfter(s.Command, "--cluster_name") != "wikiflow" {
			t.Errorf("%s: %q lacks -js or --cluster_name wikiflow", n, s.Command)
		}
		if got := argAfter(s.Command, "--routes"); got != routes {
			t.Errorf("%s: routes %q, want %q", n, got, routes)
		}
	}
	if len(names) != 3 {
		t.Errorf("server names %v: want 3 distinct", names)
	}
}

func TestClusterRedisIsFormedFromEveryNode(t *testing.T) {
	f := loadCluster(t)
	nodes := named(f, "redis-")
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == "redis-cluster" })
	if len(nodes) != 6 {
		t.Fatalf("Redis nodes %v, want 6 (3 masters, 3 replicas)", nodes)
	}
	for _, n := range nodes {
		if argAfter(f.Services[n].Command, "--cluster-enabled") != "yes" {
			t.Errorf("%s: %q is not cluster-enabled", n, f.Services[n].Command)
		}
	}
	create := strings.Join(f.Services["redis-cluster"].Command, " ")
	for _, n := range nodes {
		if !strings.Contains(create, "getent hosts "+n+" ") {
			t.Errorf("the cluster is formed without %s: %s", n, create)
		}
		if f.Services["redis-cluster"].DependsOn[n].Condition != "service_healthy" {
			t.Errorf("redis-cluster does not wait for %s to be healthy", n)
		}
	}
	if !strings.Contains(create, "--cluster-replicas 1") {
		t.Errorf("the cluster is formed without a replica per master: %s", create)
	}
}

func TestClusterPipelineUsesEveryNode(t *testing.T) {
	f := loadCluster(t)
	kafka := list(named(f, "kafka-"), "%s:19092")
	nats := list(named(f, "nats-"), "nats://%s:4222")
	redis := list(slices.DeleteFunc(named(f, "redis-"), func(n string) bool { return n == "redis-cluster" }), "redis://%s:6379/0")
	want := map[string]map[string]string{
		"ingest": {"WIKIFLOW_KAFKA_BROKERS": kafka, "WIKIFLOW_KAFKA_PARTITIONS": "6", "WIKIFLOW_KAFKA_REPLICATION_FACTOR": "3",
			"WIKIFLOW_KAFKA_MIN_INSYNC_REPLICAS": "2"},
		"bridge": {"WIKIFLOW_KAFKA_BROKERS": kafka, "WIKIFLOW_NATS_URL": nats, "WIKIFLOW_STREAM_REPLICAS": "3"},
		"api":    {"WIKIFLOW_REDIS_URL": redis, "WIKIFLOW_NATS_URL": nats},
	}
	aggs := named(f, "aggregate-")
	if len(aggs) != 3 {
		t.Fatalf("aggregates %v, want 3 shards", aggs)
	}
	var shards []string
	for _, a := range aggs {
		want[a] = map[string]string{"WIKIFLOW_NATS_URL": nats, "WIKIFLOW_REDIS_URL": redis, "WIKIFLOW_AGGREGATE_REPLICAS": "3",
			"WIKIFLOW_STREAM": f.Services["bridge"].Environment["WIKIFLOW_STREAM"]}
		shards = append(shards, f.Services[a].Environment["WIKIFLOW_AGGREGATE_SHARD"])
		if !strings.Contains(f.Services["api"].Environment["WIKIFLOW_STAGE_METRICS"], "http://"+a+":8083/metrics") {
			t.Errorf("the api does not show %s's metrics", a)
		}
	}
	if sort.Strings(shards); strings.Join(shards, " ") != "0/3 1/3 2/3" {
		t.Errorf("shards %v, want 0/3 1/3 2/3", shards)
	}
	known := knownEnvVars(t)
	for name, s := range f.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "WIKIFLOW_") && !known[k] {
				t.Errorf("%s: %s is no flag's environment variable", name, k)
			}
		}
	}
	for svc, env := range want {
		for k, v := range env {
			if got := f.Services[svc].Environment[k]; got != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, got, v)
			}
		}
	}
}
