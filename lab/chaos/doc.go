// Package chaos is the repeatable fault-injection run that proves wikiflow counts
// every event exactly once end to end, whatever process or broker dies.
//
// Run starts a private set of brokers (a Kafka KRaft node, nats-server with
// JetStream, redis-server with AOF) on ports of its own in a run folder of its own,
// then the pipeline as real processes of the wikiflow binary:
//
//	emulator (the bundled recording) ──► ingest ──► Kafka ◄── gen (generated events)
//	Kafka ──► bridge ──► JetStream ──► aggregate ──► Redis
//
// While events flow it follows a fault schedule drawn from a seeded random number
// generator (the same seed gives the same schedule): SIGKILL of ingest, bridge and
// aggregate (each restarted after a short random delay), restarts of Kafka, NATS
// and Redis (Redis stopped cleanly once, killed with SIGKILL once, and killed once
// more with the last second of its AOF cut off, as a machine crash would lose it
// with appendfsync everysec, so that the aggregate finds its watermark behind the
// consumer's ack floor), a crash of the machine of NATS, Redis, bridge and
// aggregate (all four killed at once; JetStream's store put back to its state a
// few seconds earlier and Redis's last second of AOF cut, as an OS crash loses
// what was not synced; when the aggregate then stops counting because its
// watermark is above what the stream kept, the run runs `wikiflow rebuild
// --force` as the aggregate's log says, until counting resumes), and a second
// bridge and a second aggregate on the same consumer for a while. Then it lets the pipeline drain (the recording is all in Kafka, the
// generator finished, the bridge's Kafka lag is 0, the aggregate's watermark equals
// the stream's last sequence) and compares Redis's domain -> count hash with the
// ground truth: the generator's truth file plus the recording's per-domain counts,
// computed independently with encoding/json (canaries dropped, meta.id deduplicated).
//
// Ingest owns the resume position of the Kafka topic (it resumes from the newest
// record's SSE id), so the generator, which writes straight to Kafka, starts only
// once the whole recording is in the topic; the bridge and aggregate faults and
// the broker restarts span both phases.
//
// With Topology cluster (--topology cluster) the brokers are those of
// TOPOLOGY=cluster (3 Kafka KRaft nodes, 3 nats-servers with an R3 stream, a
// Redis Cluster of 3 masters and 3 replicas) and the aggregate runs as 3 shard
// processes; besides the process kills, the faults are SIGKILLs of the leaders,
// each restarted after a random delay: the stream's (or the shard mirror's)
// JetStream leader, the Kafka node leading the most partitions, the active KRaft
// controller, and the Redis master of a shard's slot (restarted once its replica
// took over, so that it rejoins as a replica). The comparison reads the sum of
// the shards, as the API does; the results go to results-cluster.md.
//
// The command is lab/chaos/cmd/chaos (go tool task chaos); TestChaosSmall and
// TestChaosClusterSmall run smaller versions of the two runs.
package chaos
