// Package wire names what the stages exchange: the Kafka topic, the JetStream stream
// and its subjects, and the headers each hop adds. Every stage uses these names and
// nothing else, so that the native stack, compose/ and the tests agree.
package wire

// Defaults shared by every stage and by compose/.
const (
	// DefaultTopic is the Kafka topic ingest writes and bridge reads (the name the
	// original Python producer used).
	DefaultTopic = "wikimedia_events"
	// DefaultDeadLetterTopic receives events ingest could not accept, with the reason.
	DefaultDeadLetterTopic = "wikimedia_events_dlq"
	// DefaultStream is the JetStream stream bridge writes and aggregate reads.
	DefaultStream = "WIKIMEDIA"
	// SubjectPrefix is the subject prefix of every event in the stream; an event's
	// subject is SubjectPrefix.<wiki>.<type>.
	SubjectPrefix = "wikimedia.recentchange"
	// SubjectAll matches every event subject.
	SubjectAll = SubjectPrefix + ".>"
	// DefaultHash is the Redis hash of per-domain counts that the original consumer
	// kept and that old clients read.
	DefaultHash = "wikimedia_stats"
)

// Kafka record headers written by ingest.
const (
	// HeaderSSEID carries the SSE id (the resume position) of the event.
	HeaderSSEID = "sse-id"
	// HeaderMetaID carries meta.id.
	HeaderMetaID = "meta-id"
	// HeaderReceived carries the time ingest received the event, as Unix nanoseconds
	// in decimal, so later stages can measure end-to-end freshness.
	HeaderReceived = "received-ns"
	// HeaderSubject carries the event's subject in the stream,
	// SubjectPrefix.<wiki>.<type> as event.Head.Subject builds it, so that bridge
	// routes the event without parsing it. One header with the whole subject costs
	// bridge one lookup, one check and one string, where separate wiki and type
	// headers would cost two lookups and a concatenation. Bridge trusts it only with
	// HeaderMetaID beside it and only when it is a well-formed subject
	// (event.ValidSubject); records without it (older ingest, other producers) are
	// parsed as before.
	HeaderSubject = "subject"
	// HeaderReason carries, on a dead-letter record, why the event was rejected.
	HeaderReason = "dlq-reason"
)

// NATS message headers written by bridge (besides Nats-Msg-Id = meta.id).
const (
	HeaderKafkaTopic     = "Kafka-Topic"
	HeaderKafkaPartition = "Kafka-Partition"
	HeaderKafkaOffset    = "Kafka-Offset"
	// HeaderNATSReceived is HeaderReceived carried over to JetStream.
	HeaderNATSReceived = "Wikiflow-Received"
)
