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
		return []string{bin, "ingest", "--url", url, "--kafka-brokers", c.KafkaAddr(),
			"--health-addr", addr(p.IngestHealth)}, nil
	case "bridge":
		return []string{bin, "bridge", "--kafka-brokers", c.KafkaAddr(), "--nats-url", c.NATSURL(),
			"--health-addr", addr(p.BridgeHealth)}, nil
	case "aggregate":
		return []string{bin, "aggregate", "--nats-url", c.NATSURL(), "--redis-url", c.RedisURL(),
			"--health-addr", addr(p.AggregateHealth)}, nil
	case "api":
		metrics := make([]string, 0, 3)
		for _, port := range []int{p.IngestHealth, p.BridgeHealth, p.AggregateHealth} {
			metrics = append(metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		}
		return []string{bin, "api", "--addr", addr(p.API), "--redis-url", c.RedisURL(), "--nats-url", c.NATSURL(),
			"--stage-metrics", strings.Join(metrics, ",")}, nil
	}
	return nil, fmt.Errorf("unknown component %q (known: %s)", name, strings.Join(Components(), " "))
}

// Args is the command line of any component of the stack.
func (c Config) Args(name string) ([]string, error) {
	switch name {
	case "kafka":
		return c.Kafka().Args(), nil
	case "nats":
		return c.NATS().Args(), nil
	case "redis":
		return c.Redis().Args(), nil
	}
	return c.ServiceArgs(name)
}

// matches reports whether args, the command line of a running process, is that
// of component name. Redis rewrites its process title to
// "redis-server 127.0.0.1:<port>", so for it the port must appear.
func (c Config) matches(name, args string) bool {
	switch name {
	case "kafka":
		return strings.Contains(args, c.Kafka().Signature())
	case "nats":
		return strings.Contains(args, c.NATSServer) && strings.Contains(args, c.NATS().Conf)
	case "redis":
		return strings.Contains(args, "redis-server") && strings.Contains(args, fmt.Sprint(c.Ports.Redis))
	}
	return strings.Contains(args, c.Wikiflow+" "+name)
}
