package stack

// The versions of the native brokers. stack/kafka/pom.xml (<kafka.version>) and
// tools/go.mod (github.com/nats-io/nats-server/v2) pin the same ones.
const (
	// KafkaVersion is the Kafka release whose jars Maven fetches from
	// stack/kafka/pom.xml.
	KafkaVersion = "4.4.0"
	// NATSServerVersion is the nats-server module version built from tools/go.mod.
	NATSServerVersion = "v2.15.2"
	// MinJava is the oldest Java release Kafka runs on.
	MinJava = 17
)
