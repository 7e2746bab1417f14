package brokers

// The brokers' default addresses: a broker of each kind on this machine at its
// standard port, as the native stack runs them. Every flag default and every
// stage's DefaultConfig uses these.
const (
	// DefaultKafka is the default Kafka bootstrap broker.
	DefaultKafka = "127.0.0.1:9092"
	// DefaultNATS is the default NATS server URL.
	DefaultNATS = "nats://127.0.0.1:4222"
	// DefaultRedis is the default Redis URL (database 0).
	DefaultRedis = "redis://127.0.0.1:6379/0"
)
