package stack

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// ClusterSize is the number of Kafka nodes, nats-servers and aggregate shards of
// TOPOLOGY=cluster; its Redis Cluster has as many masters, each with one replica.
const ClusterSize = 3

// DefaultClusterBasePort is the first port of TOPOLOGY=cluster
// ($STACK_CLUSTER_BASE_PORT); see [ClusterPorts] for the layout.
const DefaultClusterBasePort = 7000

// ClusterPorts lays the brokers of TOPOLOGY=cluster out from Base, node i
// counted from 1: Kafka i on Base+3(i-1) (client, controller, SASL), nats-server
// i on Base+10+i-1 (client), Base+13+i-1 (route), Base+16+i-1 (monitor), Redis
// node i of 6 on Base+20+i-1 (its bus on that port + 10000), aggregate shard i's
// health on Base+30+i-1.
type ClusterPorts struct{ Base int }

// Kafka returns Kafka node i's client, controller and SASL ports.
func (p ClusterPorts) Kafka(i int) (client, controller, sasl int) {
	b := p.Base + 3*(i-1)
	return b, b + 1, b + 2
}

// NATS returns nats-server i's client, route and monitor ports.
func (p ClusterPorts) NATS(i int) (client, route, monitor int) {
	return p.Base + 10 + i - 1, p.Base + 13 + i - 1, p.Base + 16 + i - 1
}

// Redis returns Redis node i's port (1-6).
func (p ClusterPorts) Redis(i int) int { return p.Base + 20 + i - 1 }

// AggregateHealth returns aggregate shard i's health port.
func (p ClusterPorts) AggregateHealth(i int) int { return p.Base + 30 + i - 1 }

// Clustered reports whether the stack runs TOPOLOGY=cluster.
func (c Config) Clustered() bool { return c.Topology == "cluster" }

// node splits a component name such as kafka2 into its kind (kafka) and node
// number (2; 0 for a name without one).
func node(name string) (string, int) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return name[:i], n
}

func numbered(kind string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", kind, i+1)
	}
	return out
}

// BrokerNames are the stack's broker components: kafka, nats and redis, or with
// TOPOLOGY=cluster kafka1-3, nats1-3 and redis1-6.
func (c Config) BrokerNames() []string {
	if !c.Clustered() {
		return append([]string(nil), Brokers...)
	}
	out := append(numbered("kafka", ClusterSize), numbered("nats", ClusterSize)...)
	return append(out, numbered("redis", 2*ClusterSize)...)
}

// ServiceNames are the stack's stages; with TOPOLOGY=cluster the aggregate is
// aggregate1-3 (aggregate k counts --shard k-1/3).
func (c Config) ServiceNames() []string {
	if !c.Clustered() {
		return append([]string(nil), Services...)
	}
	return []string{"emulator", "ingest", "bridge", "aggregate1", "aggregate2", "aggregate3", "api"}
}

// runningTopology is cluster when a broker of TOPOLOGY=cluster runs in the run
// folder and none of the single topology does, else single.
func (c Config) runningTopology() string {
	single, cluster := c, c
	single.Topology, cluster.Topology = "single", "cluster"
	for _, name := range single.BrokerNames() {
		if _, ok := single.RunningPid(name); ok {
			return "single"
		}
	}
	for _, name := range cluster.BrokerNames() {
		if _, ok := cluster.RunningPid(name); ok {
			return "cluster"
		}
	}
	return "single"
}

// ComponentNames are BrokerNames, then ServiceNames.
func (c Config) ComponentNames() []string { return append(c.BrokerNames(), c.ServiceNames()...) }

// known reports whether name is one of the stack's components.
func (c Config) known(name string) bool {
	for _, n := range c.ComponentNames() {
		if n == name {
			return true
		}
	}
	return false
}

// PortsOf returns the ports a component of the stack listens on.
func (c Config) PortsOf(name string) []int {
	if !c.Clustered() || !c.known(name) {
		return c.Ports.Of(name)
	}
	kind, i := node(name)
	cp := c.ClusterPorts
	switch kind {
	case "kafka":
		a, b, s := cp.Kafka(i)
		return []int{a, b, s}
	case "nats":
		a, r, m := cp.NATS(i)
		return []int{a, r, m}
	case "redis":
		return []int{cp.Redis(i)}
	case "aggregate":
		return []int{cp.AggregateHealth(i)}
	}
	return c.Ports.Of(name)
}

// KafkaAddrs are the Kafka bootstrap addresses, comma-separated.
func (c Config) KafkaAddrs() string {
	if !c.Clustered() {
		return c.KafkaAddr()
	}
	var out []string
	for i := 1; i <= ClusterSize; i++ {
		p, _, _ := c.ClusterPorts.Kafka(i)
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return strings.Join(out, ",")
}

// NATSURLs are the NATS client URLs, comma-separated.
func (c Config) NATSURLs() string {
	if !c.Clustered() {
		return c.NATSURL()
	}
	var out []string
	for i := 1; i <= ClusterSize; i++ {
		p, _, _ := c.ClusterPorts.NATS(i)
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(out, ",")
}

// RedisURLs are the Redis URLs, comma-separated (every node of the Redis Cluster).
func (c Config) RedisURLs() string {
	if !c.Clustered() {
		return c.RedisURL()
	}
	var out []string
	for i := 1; i <= 2*ClusterSize; i++ {
		out = append(out, fmt.Sprintf("redis://127.0.0.1:%d/0", c.ClusterPorts.Redis(i)))
	}
	return strings.Join(out, ",")
}

// KafkaNode returns Kafka node i of TOPOLOGY=cluster (0: the single broker):
// static controller voters of all three nodes, one cluster id, three replicas of
// every topic by default and two in sync for a write.
func (c Config) KafkaNode(i int) Kafka {
	k := c.Kafka()
	if i == 0 {
		return k
	}
	k.Name, k.NodeID = fmt.Sprintf("kafka%d", i), i
	k.Port, k.ControllerPort, k.SASLPort = c.ClusterPorts.Kafka(i)
	k.DataDir = filepath.Join(c.DataDir(), k.Name)
	k.ClusterIDFile = filepath.Join(c.DataDir(), "kafka-cluster.id")
	var voters []string
	for j := 1; j <= ClusterSize; j++ {
		_, ctl, _ := c.ClusterPorts.Kafka(j)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", j, ctl))
	}
	k.Extra = fmt.Sprintf(`node.id=%d
controller.quorum.bootstrap.servers=
controller.quorum.voters=%s
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
num.io.threads=2
`, i, strings.Join(voters, ","))
	return k
}

// NATSNode returns nats-server i (n1-n3) of TOPOLOGY=cluster (0: the single
// server), routed to the other two.
func (c Config) NATSNode(i int) NATS {
	n := c.NATS()
	if i == 0 {
		return n
	}
	var route int
	n.Port, route, n.MonitorPort = c.ClusterPorts.NATS(i)
	n.Name = fmt.Sprintf("n%d", i)
	n.StoreDir = filepath.Join(c.DataDir(), fmt.Sprintf("nats%d", i))
	n.Conf = filepath.Join(c.RunDir(), fmt.Sprintf("nats%d.conf", i))
	n.ClusterName, n.RoutePort = c.NATSName, route
	for j := 1; j <= ClusterSize; j++ {
		_, r, _ := c.ClusterPorts.NATS(j)
		n.Routes = append(n.Routes, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	return n
}

// RedisNode returns Redis node i (1-6) of TOPOLOGY=cluster (0: the single server).
func (c Config) RedisNode(i int) Redis {
	r := c.Redis()
	if i == 0 {
		return r
	}
	r.Port, r.Cluster = c.ClusterPorts.Redis(i), true
	r.Dir = filepath.Join(c.DataDir(), fmt.Sprintf("redis%d", i))
	return r
}
