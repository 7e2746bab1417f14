package stack

import (
	"fmt"
	"strings"
)

// ServiceArgs is the command line of a pipeline stage of the stack: each is told
// the stack's own ports, never the defaults (another stack may hold them).
func (c Config) ServiceArgs(name string) ([]string, error) {
	p, bin := c.Ports, c.Wikiflow
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	switch name {
	case "emulator":
		return []string{bin, "emulator", "--addr", addr(p.Emulator), "--loop", "--rebase"}, nil
	case "ingest":
		url, err := c.SourceURL()
		if err != nil {
			return nil, err
		}
		args := []string{bin, "ingest", "--url", url, "--kafka-brokers", c.KafkaAddrs(),
			"--health-addr", addr(p.IngestHealth)}
		if c.Clustered() {
			args = append(args, "--partitions", "6", "--replication-factor", "3", "--min-insync-replicas", "2")
		}
		return args, nil
	case "bridge":
		args := []string{bin, "bridge", "--kafka-brokers", c.KafkaAddrs(), "--nats-url", c.NATSURLs(),
			"--health-addr", addr(p.BridgeHealth)}
		if c.Clustered() {
			args = append(args, "--stream-replicas", "3")
		}
		return args, nil
	case "aggregate":
		return []string{bin, "aggregate", "--nats-url", c.NATSURL(), "--redis-url", c.RedisURL(),
			"--health-addr", addr(p.AggregateHealth)}, nil
	case "api":
		metrics := make([]string, 0, 3)
		for _, port := range c.stagePorts() {
			metrics = append(metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		}
		return []string{bin, "api", "--addr", addr(p.API), "--redis-url", c.RedisURLs(), "--nats-url", c.NATSURLs(),
			"--stage-metrics", strings.Join(metrics, ",")}, nil
	}
	if kind, k := node(name); kind == "aggregate" && c.Clustered() && c.known(name) {
		return []string{bin, "aggregate", "--nats-url", c.NATSURLs(), "--redis-url", c.RedisURLs(),
			"--shard", fmt.Sprintf("%d/%d", k-1, ClusterSize), "--replicas", fmt.Sprint(ClusterSize),
			"--health-addr", addr(c.ClusterPorts.AggregateHealth(k))}, nil
	}
	return nil, fmt.Errorf("unknown component %q (known: %s)", name, strings.Join(c.ComponentNames(), " "))
}

// stagePorts are the health ports of ingest, the bridge and every aggregate.
func (c Config) stagePorts() []int {
	ports := []int{c.Ports.IngestHealth, c.Ports.BridgeHealth}
	for _, name := range c.ServiceNames() {
		if kind, _ := node(name); kind == "aggregate" {
			ports = append(ports, c.PortsOf(name)[0])
		}
	}
	return ports
}

// Args is the command line of any component of the stack.
func (c Config) Args(name string) ([]string, error) {
	switch kind, i := node(name); kind {
	case "kafka":
		return c.KafkaNode(i).Args(), nil
	case "nats":
		return c.NATSNode(i).Args(), nil
	case "redis":
		return c.RedisNode(i).Args(), nil
	}
	return c.ServiceArgs(name)
}

// matches reports whether args, the command line of a running process, is that
// of component name. Redis rewrites its process title to
// "redis-server 127.0.0.1:<port>", so for it the port must appear.
func (c Config) matches(name, args string) bool {
	kind, i := node(name)
	switch kind {
	case "kafka":
		return strings.Contains(args, c.KafkaNode(i).Signature())
	case "nats":
		return strings.Contains(args, c.NATSServer) && strings.Contains(args, c.NATSNode(i).Conf)
	case "redis":
		return strings.Contains(args, "redis-server") && strings.Contains(args, fmt.Sprint(c.RedisNode(i).Port))
	case "aggregate":
		return strings.Contains(args, c.Wikiflow+" aggregate") && strings.Contains(args, fmt.Sprintf("127.0.0.1:%d", c.PortsOf(name)[0]))
	}
	return strings.Contains(args, c.Wikiflow+" "+name)
}
