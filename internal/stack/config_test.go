package stack

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Home != "/repo/.wikiflow" || c.RunDir() != "/repo/.wikiflow/run" || c.DataDir() != "/repo/.wikiflow/data" {
		t.Errorf("folders %s %s %s", c.Home, c.RunDir(), c.DataDir())
	}
	if want := "/home/u/.cache/wikiflow/kafka-" + KafkaVersion + "/libs"; c.KafkaLibs != want {
		t.Errorf("kafka libs %s, want %s", c.KafkaLibs, want)
	}
	if c.Ports != DefaultPorts() || c.Timeout != 120*time.Second || c.FeedWait != 15*time.Second {
		t.Errorf("defaults %+v %s %s", c.Ports, c.Timeout, c.FeedWait)
	}
	if c.NATSSyncInterval != "always" || c.Mode != "native" || c.Source != "live" || c.LogLines != 50 {
		t.Errorf("defaults %q %q %q %d", c.NATSSyncInterval, c.Mode, c.Source, c.LogLines)
	}
	if c.Wikiflow != "/repo/.wikiflow/bin/wikiflow" || c.NATSServer != "/repo/.wikiflow/bin/nats-server" || c.WikiflowGiven {
		t.Errorf("binaries %s %s", c.Wikiflow, c.NATSServer)
	}
	if u, _ := c.SourceURL(); u != LiveURL {
		t.Errorf("source %s", u)
	}
	want := map[string]int{"STACK_KAFKA_PORT": 9092, "STACK_KAFKA_CONTROLLER_PORT": 9093, "STACK_KAFKA_SASL_PORT": 9094,
		"STACK_NATS_PORT": 4222, "STACK_NATS_MONITOR_PORT": 8222, "STACK_REDIS_PORT": 6379, "STACK_API_PORT": 8080,
		"STACK_INGEST_HEALTH_PORT": 8081, "STACK_BRIDGE_HEALTH_PORT": 8082, "STACK_AGGREGATE_HEALTH_PORT": 8083,
		"STACK_EMULATOR_PORT": 8090}
	got := c.Ports.ByEnv()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ports %v", got)
	}
}

func TestFromEnvOverrides(t *testing.T) {
	env := map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/xdg", "STACK_HOME": "/s", "STACK_TIMEOUT": "7",
		"STACK_FEED_WAIT": "2", "STACK_NATS_SYNC_INTERVAL": "1s", "STACK_KAFKA_JVM_OPTS": "-Xmx1g  -Xms1g",
		"WIKIFLOW_BIN": "/bin/wf", "SOURCE": "sample", "STACK": "docker", "LOGS_LINES": "5", "LOGS_FOLLOW": "1"}
	for k, v := range DefaultPorts().ByEnv() {
		env[k] = strconv.Itoa(v + 10000)
	}
	c, err := FromEnv("/repo", envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Home != "/s" || c.KafkaLibs != filepath.Join("/xdg/wikiflow", "kafka-"+KafkaVersion, "libs") {
		t.Errorf("folders %s %s", c.Home, c.KafkaLibs)
	}
	if c.Ports.Kafka != 19092 || c.Ports.Emulator != 18090 || c.Ports.API != 18080 {
		t.Errorf("ports %+v", c.Ports)
	}
	if c.Timeout != 7*time.Second || c.FeedWait != 2*time.Second || c.NATSSyncInterval != "1s" {
		t.Errorf("%s %s %s", c.Timeout, c.FeedWait, c.NATSSyncInterval)
	}
	if !slices.Equal(c.KafkaJVMOpts, []string{"-Xmx1g", "-Xms1g"}) || c.Wikiflow != "/bin/wf" || !c.WikiflowGiven {
		t.Errorf("%q %s", c.KafkaJVMOpts, c.Wikiflow)
	}
	if c.Mode != "docker" || c.LogLines != 5 || !c.LogsFollow {
		t.Errorf("%s %d %v", c.Mode, c.LogLines, c.LogsFollow)
	}
	if u, _ := c.SourceURL(); u != "http://127.0.0.1:18090/v2/stream/recentchange" {
		t.Errorf("sample source %s", u)
	}
}

func TestFromEnvReportsEveryProblem(t *testing.T) {
	_, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "STACK_TIMEOUT": "soon", "STACK_KAFKA_PORT": "70000",
		"STACK_API_PORT": "6379", "SOURCE": "ftp://x", "STACK": "podman", "STACK_NATS_SYNC_INTERVAL": "often"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"STACK_TIMEOUT=soon", "STACK_KAFKA_PORT=70000", "STACK_REDIS_PORT and STACK_API_PORT are both 6379",
		`SOURCE must be live, sample or an http(s) URL, not "ftp://x"`, `STACK must be native or docker, not "podman"`,
		"STACK_NATS_SYNC_INTERVAL=often"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestSourceURL(t *testing.T) {
	for src, want := range map[string]string{"live": LiveURL, "": LiveURL, "https://x.example/feed": "https://x.example/feed",
		"sample": "http://127.0.0.1:8090/v2/stream/recentchange"} {
		c := Config{Source: src, Ports: DefaultPorts()}
		if got, err := c.SourceURL(); err != nil || got != want {
			t.Errorf("SOURCE=%q: %q, %v; want %q", src, got, err, want)
		}
	}
}

// TestServiceArgsUseTheStacksPorts checks that every stage is told the stack's
// own ports, never the defaults (another stack may hold those).
func TestServiceArgsUseTheStacksPorts(t *testing.T) {
	c, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "SOURCE": "sample", "STACK_KAFKA_PORT": "19100",
		"STACK_NATS_PORT": "19103", "STACK_REDIS_PORT": "19105", "STACK_API_PORT": "19110", "STACK_INGEST_HEALTH_PORT": "19111",
		"STACK_BRIDGE_HEALTH_PORT": "19112", "STACK_AGGREGATE_HEALTH_PORT": "19113", "STACK_EMULATOR_PORT": "19114"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"emulator":  "/repo/.wikiflow/bin/wikiflow emulator --addr 127.0.0.1:19114 --loop --rebase",
		"ingest":    "/repo/.wikiflow/bin/wikiflow ingest --url http://127.0.0.1:19114/v2/stream/recentchange --kafka-brokers 127.0.0.1:19100 --health-addr 127.0.0.1:19111",
		"bridge":    "/repo/.wikiflow/bin/wikiflow bridge --kafka-brokers 127.0.0.1:19100 --nats-url nats://127.0.0.1:19103 --health-addr 127.0.0.1:19112",
		"aggregate": "/repo/.wikiflow/bin/wikiflow aggregate --nats-url nats://127.0.0.1:19103 --redis-url redis://127.0.0.1:19105/0 --health-addr 127.0.0.1:19113",
		"api": "/repo/.wikiflow/bin/wikiflow api --addr 127.0.0.1:19110 --redis-url redis://127.0.0.1:19105/0 --nats-url nats://127.0.0.1:19103 " +
			"--stage-metrics http://127.0.0.1:19111/metrics,http://127.0.0.1:19112/metrics,http://127.0.0.1:19113/metrics",
	}
	for name, w := range want {
		args, err := c.ServiceArgs(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(args, " "); got != w {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
		if !c.matches(name, strings.Join(args, " ")) {
			t.Errorf("%s: its own command line does not match it", name)
		}
	}
	if _, err := c.ServiceArgs("zookeeper"); err == nil {
		t.Error("unknown component accepted")
	}
}

func TestBrokerArgs(t *testing.T) {
	c, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "STACK_REDIS_PORT": "19105", "STACK_NATS_PORT": "19103", "STACK_NATS_MONITOR_PORT": "19104"}))
	if err != nil {
		t.Fatal(err)
	}
	redis := strings.Join(c.Redis().Args(), " ")
	if want := "redis-server --port 19105 --bind 127.0.0.1 --dir /repo/.wikiflow/data/redis --appendonly yes --appendfsync everysec --save  --daemonize no --logfile "; redis != want {
		t.Errorf("redis %q", redis)
	}
	if !c.matches("redis", "redis-server 127.0.0.1:19105") || c.matches("redis", "redis-server 127.0.0.1:6379") {
		t.Error("redis matches another port's server, or not its own")
	}
	nats := strings.Join(c.NATS().Args(), " ")
	if want := "/repo/.wikiflow/bin/nats-server -n wikiflow -a 127.0.0.1 -p 19103 -m 19104 -c /repo/.wikiflow/run/nats.conf"; nats != want {
		t.Errorf("nats %q", nats)
	}
	kafka := strings.Join(c.Kafka().Args(), " ")
	for _, want := range []string{"java -Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError",
		"-Dlog4j2.configurationFile=/repo/stack/kafka/log4j2.properties", "-cp /h/.cache/wikiflow/kafka-" + KafkaVersion + "/libs/*",
		"kafka.Kafka /repo/.wikiflow/run/kafka.properties"} {
		if !strings.Contains(kafka, want) {
			t.Errorf("kafka %q lacks %q", kafka, want)
		}
	}
}

func TestCksumMatchesPOSIX(t *testing.T) {
	// printf 'hello world\n' | cksum
	if got := Cksum([]byte("hello world\n")); got != 3733384285 {
		t.Errorf("cksum %d, want 3733384285", got)
	}
	// printf '' | cksum
	if got := Cksum(nil); got != 4294967295 {
		t.Errorf("cksum of nothing %d, want 4294967295", got)
	}
}

func TestClusterID(t *testing.T) {
	for i := 0; i < 100; i++ {
		id, err := ClusterID()
		if err != nil || len(id) != 22 || strings.HasPrefix(id, "-") || strings.ContainsAny(id, "+/=") {
			t.Fatalf("cluster id %q, %v", id, err)
		}
	}
}

func TestClusterTopology(t *testing.T) {
	c, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "TOPOLOGY": "cluster", "STACK_CLUSTER_BASE_PORT": "19600"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.BrokerNames(), " "); got != "kafka1 kafka2 kafka3 nats1 nats2 nats3 redis1 redis2 redis3 redis4 redis5 redis6" {
		t.Errorf("brokers: %s", got)
	}
	if !slices.Equal(c.KafkaJVMOpts, ClusterKafkaJVMOpts) {
		t.Errorf("Kafka JVM options %v, want %v", c.KafkaJVMOpts, ClusterKafkaJVMOpts)
	}
	ports := map[string]string{"kafka2": "19603,19604,19605", "nats3": "19612,19615,19618", "redis6": "19625", "aggregate1": "19630"}
	for name, want := range ports {
		if got := joinPorts(c.PortsOf(name)); got != want {
			t.Errorf("%s ports %s, want %s", name, got, want)
		}
	}
	agg, err := c.ServiceArgs("aggregate3")
	if err != nil {
		t.Fatal(err)
	}
	want := "/repo/.wikiflow/bin/wikiflow aggregate --nats-url nats://127.0.0.1:19610,nats://127.0.0.1:19611,nats://127.0.0.1:19612 " +
		"--redis-url redis://127.0.0.1:19620/0,redis://127.0.0.1:19621/0,redis://127.0.0.1:19622/0,redis://127.0.0.1:19623/0,redis://127.0.0.1:19624/0,redis://127.0.0.1:19625/0 " +
		"--shard 2/3 --replicas 3 --health-addr 127.0.0.1:19632"
	if got := strings.Join(agg, " "); got != want {
		t.Errorf("aggregate3:\n got %s\nwant %s", got, want)
	}
	for _, name := range c.ComponentNames() {
		args, err := c.Args(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range c.ComponentNames() {
			if got := c.matches(other, strings.Join(args, " ")); got != (other == name) {
				t.Errorf("%s's command line matches %s: %v", name, other, got)
			}
		}
	}
	ingest, _ := c.ServiceArgs("ingest")
	if !strings.Contains(strings.Join(ingest, " "), "--partitions 6 --replication-factor 3 --min-insync-replicas 2") {
		t.Errorf("ingest: %v", ingest)
	}
	if _, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "TOPOLOGY": "ring"})); err == nil {
		t.Error("TOPOLOGY=ring accepted")
	}
	if _, err := FromEnv("/repo", envOf(map[string]string{"HOME": "/h", "TOPOLOGY": "cluster", "STACK_CLUSTER_BASE_PORT": "8060"})); err == nil {
		t.Error("a cluster port on STACK_API_PORT (8080) accepted")
	}
}
