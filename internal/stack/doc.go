// Package stack is wikiflow's launcher: it fetches, configures, starts,
// health-checks and stops the brokers (Kafka in KRaft mode, nats-server with
// JetStream, Redis) and the pipeline's stages on given ports and folders.
//
// Two ways of running a process share the same configuration and checks:
//
//   - [Stack] starts detached processes, each in its own session with a pid file
//     and a log in <home>/run, and finds them again on the next command; it is
//     what `wikiflow stack up|down|status|logs|clean|infra` runs.
//   - [Proc] runs one child of the calling program in its own process group, for
//     tools that supervise, kill and restart processes themselves (lab/chaos,
//     lab/bench).
//
// With TOPOLOGY=cluster ([Config.Topology]) every broker is a 3-node cluster on
// loopback (Kafka nodes kafka1-3 in KRaft, nats-servers nats1-3 in one JetStream
// cluster, a Redis Cluster redis1-6 of 3 masters and 3 replicas) and the aggregate
// runs as shards aggregate1-3; [ClusterPorts] lays their ports out.
//
// The brokers' versions are pinned here ([KafkaVersion], [NATSServerVersion]);
// stack/kafka/pom.xml and tools/go.mod must name the same ones, which a test
// checks. [EnsureTools] installs what the native brokers need when it is missing.
package stack
