// Package brokers turns wikiflow's connection settings into clients for Kafka,
// NATS and Redis, with TLS and credentials for each. Secrets never appear in the
// errors or log values it returns: use Redact for anything that may hold them.
package brokers

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/wikiflow/wikiflow/internal/cli"
)

// TLS configures a TLS client connection. The zero value means plain TCP.
type TLS struct {
	// Enable turns TLS on (implied by any file below).
	Enable bool
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile, KeyFile string
	// InsecureSkipVerify disables server certificate checks (tests only).
	InsecureSkipVerify bool
}

// Config builds the *tls.Config, or nil when TLS is off.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enable && t.CAFile == "" && t.CertFile == "" && t.KeyFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("load client certificate: the certificate and key files go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func tlsFlags(f *cli.Flags, t *TLS, prefix, envPrefix string) {
	f.Bool(&t.Enable, prefix+"-tls", envPrefix+"_TLS", false, "use TLS")
	f.String(&t.CAFile, prefix+"-tls-ca", envPrefix+"_TLS_CA", "", "PEM file of CAs to trust")
	f.String(&t.CertFile, prefix+"-tls-cert", envPrefix+"_TLS_CERT", "", "client certificate (PEM) for mutual TLS")
	f.String(&t.KeyFile, prefix+"-tls-key", envPrefix+"_TLS_KEY", "", "client key (PEM) for mutual TLS")
}

// Kafka holds the settings for reaching Kafka.
type Kafka struct {
	// Brokers are bootstrap addresses (default 127.0.0.1:9092).
	Brokers []string
	// Topic is the events topic (default wire.DefaultTopic).
	Topic string
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	// User and Password are the SASL credentials.
	User, Password string
	// TLS configures encryption.
	TLS TLS
}

// KafkaFlags registers the Kafka flags on f, bound to k.
func KafkaFlags(f *cli.Flags, k *Kafka, defaultTopic string) {
	f.List(&k.Brokers, "kafka-brokers", "WIKIFLOW_KAFKA_BROKERS", DefaultKafka, "Kafka bootstrap brokers")
	f.String(&k.Topic, "kafka-topic", "WIKIFLOW_KAFKA_TOPIC", defaultTopic, "Kafka topic of the events")
	f.String(&k.SASLMechanism, "kafka-sasl", "WIKIFLOW_KAFKA_SASL", "", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.String(&k.User, "kafka-user", "WIKIFLOW_KAFKA_USER", "", "Kafka SASL user")
	f.String(&k.Password, "kafka-password", "WIKIFLOW_KAFKA_PASSWORD", "", "Kafka SASL password (prefer the environment variable)")
	tlsFlags(f, &k.TLS, "kafka", "WIKIFLOW_KAFKA")
}

// Validate reports every problem with k.
func (k Kafka) Validate() error {
	var errs []error
	if len(k.Brokers) == 0 {
		errs = append(errs, errors.New("kafka-brokers: at least one broker is needed"))
	}
	if k.Topic == "" {
		errs = append(errs, errors.New("kafka-topic: must not be empty"))
	}
	if _, err := k.mechanism(); err != nil {
		errs = append(errs, err)
	}
	if k.SASLMechanism != "" && k.User == "" {
		errs = append(errs, errors.New("kafka-user: needed with kafka-sasl"))
	}
	if k.SASLMechanism != "" && k.Password == "" {
		errs = append(errs, errors.New("kafka-password: needed with kafka-sasl"))
	}
	return errors.Join(errs...)
}

func (k Kafka) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(k.SASLMechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: k.User, Password: k.Password}, nil
	case "SCRAM-SHA-256":
		return k.scram(scram.SHA256)
	case "SCRAM-SHA-512":
		return k.scram(scram.SHA512)
	default:
		return nil, fmt.Errorf("kafka-sasl: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", k.SASLMechanism)
	}
}

// scram builds a SCRAM mechanism. The SCRAM library quotes the offending user or
// password in its SASLprep errors, so only the name of the field is passed on.
func (k Kafka) scram(algo scram.Algorithm) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, k.User, k.Password)
	if err == nil {
		return m, nil
	}
	field := "kafka-user or kafka-password"
	switch msg := err.Error(); {
	case strings.Contains(msg, "username"):
		field = "kafka-user"
	case strings.Contains(msg, "password"):
		field = "kafka-password"
	}
	return nil, fmt.Errorf("kafka-sasl %s: %s holds a character that SASLprep prohibits", algo.Name(), field)
}

// Transport returns a kafka-go transport (for Writer and Client) with k's TLS and SASL.
func (k Kafka) Transport() (*kafka.Transport, error) {
	mech, tc, err := k.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{SASL: mech, TLS: tc, DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second}, nil
}

// Dialer returns a kafka-go dialer (for Reader and Conn) with k's TLS and SASL.
func (k Kafka) Dialer() (*kafka.Dialer, error) {
	mech, tc, err := k.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true, SASLMechanism: mech, TLS: tc}, nil
}

// security returns k's SASL mechanism and TLS configuration (nil for none).
func (k Kafka) security() (sasl.Mechanism, *tls.Config, error) {
	mech, err := k.mechanism()
	if err != nil {
		return nil, nil, err
	}
	tc, err := k.TLS.Config()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka TLS: %w", err)
	}
	return mech, tc, nil
}

// Client returns a kafka-go admin/data client for k.
func (k Kafka) Client() (*kafka.Client, error) {
	tr, err := k.Transport()
	if err != nil {
		return nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: tr, Timeout: 10 * time.Second}, nil
}

// NATS holds the settings for reaching NATS.
type NATS struct {
	// URL is the server URL list (default nats://127.0.0.1:4222).
	URL string
	// CredsFile is a NATS credentials file (JWT + NKey seed).
	CredsFile string
	// NKeyFile is an NKey seed file.
	NKeyFile string
	// User and Password authenticate with user/password; Token with a token.
	User, Password, Token string
	// TLS configures encryption.
	TLS TLS
}

// NATSFlags registers the NATS flags on f, bound to n.
func NATSFlags(f *cli.Flags, n *NATS) {
	f.String(&n.URL, "nats-url", "WIKIFLOW_NATS_URL", DefaultNATS, "NATS server URL(s), comma-separated")
	f.String(&n.CredsFile, "nats-creds", "WIKIFLOW_NATS_CREDS", "", "NATS credentials file")
	f.String(&n.NKeyFile, "nats-nkey", "WIKIFLOW_NATS_NKEY", "", "NATS NKey seed file")
	f.String(&n.User, "nats-user", "WIKIFLOW_NATS_USER", "", "NATS user")
	f.String(&n.Password, "nats-password", "WIKIFLOW_NATS_PASSWORD", "", "NATS password (prefer the environment variable)")
	f.String(&n.Token, "nats-token", "WIKIFLOW_NATS_TOKEN", "", "NATS token (prefer the environment variable)")
	tlsFlags(f, &n.TLS, "nats", "WIKIFLOW_NATS")
}

// Connect connects to NATS as the named client, reconnecting forever.
func (n NATS) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("wikiflow-" + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.Timeout(5 * time.Second),
	}
	if n.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if n.User != "" {
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.Token != "" {
		opts = append(opts, nats.Token(n.Token))
	}
	tc, err := n.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("nats TLS: %w", err)
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		// nats.go quotes a URL it cannot parse, credentials included.
		secrets := append(urlSecrets(n.URL), n.Password, n.Token)
		return nil, fmt.Errorf("connect to NATS at %s: %w", Redact(n.URL), scrub(err, secrets...))
	}
	return nc, nil
}

// Redis holds the settings for reaching Redis: one server, or a Redis Cluster.
type Redis struct {
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS
	// (default redis://127.0.0.1:6379/0). A comma-separated list of such URLs
	// names the seed nodes of a Redis Cluster (database 0 only; credentials, TLS
	// and options are taken from the first URL).
	URL string
	// Cluster makes a single URL a Redis Cluster seed node too (default false: a
	// single URL is one server).
	Cluster bool
	// User and Password override the URL's ACL credentials.
	User, Password string
	// TLS adds CA and client certificates (rediss:// turns TLS on by itself).
	TLS TLS
}

// RedisFlags registers the Redis flags on f, bound to r.
func RedisFlags(f *cli.Flags, r *Redis) {
	f.String(&r.URL, "redis-url", "WIKIFLOW_REDIS_URL", DefaultRedis, "Redis URL (rediss:// for TLS); a comma-separated list of URLs names the nodes of a Redis Cluster")
	f.Bool(&r.Cluster, "redis-cluster", "WIKIFLOW_REDIS_CLUSTER", false, "treat a single --redis-url as a Redis Cluster node")
	f.String(&r.User, "redis-user", "WIKIFLOW_REDIS_USER", "", "Redis ACL user")
	f.String(&r.Password, "redis-password", "WIKIFLOW_REDIS_PASSWORD", "", "Redis password (prefer the environment variable)")
	tlsFlags(f, &r.TLS, "redis", "WIKIFLOW_REDIS")
}

// Options returns go-redis options for r: of its first URL when it lists the
// nodes of a cluster, every URL being checked.
func (r Redis) Options() (*redis.Options, error) {
	urls := r.urls()
	for _, u := range urls[1:] {
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis-url %s: not a valid redis:// or rediss:// URL", Redact(u))
		}
		if o.DB != 0 {
			return nil, fmt.Errorf("redis-url %s: a Redis Cluster has database 0 only", Redact(u))
		}
	}
	o, err := redis.ParseURL(urls[0])
	if err == nil && r.IsCluster() && o.DB != 0 {
		return nil, fmt.Errorf("redis-url %s: a Redis Cluster has database 0 only", Redact(urls[0]))
	}
	if err != nil {
		// go-redis errors may quote the URL; never pass its text on.
		return nil, fmt.Errorf("redis-url %s: not a valid redis:// or rediss:// URL", Redact(r.URL))
	}
	if r.User != "" {
		o.Username = r.User
	}
	if r.Password != "" {
		o.Password = r.Password
	}
	tc, err := r.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("redis TLS: %w", err)
	}
	if tc != nil {
		if o.TLSConfig != nil {
			tc.ServerName = o.TLSConfig.ServerName
			tc.InsecureSkipVerify = tc.InsecureSkipVerify || o.TLSConfig.InsecureSkipVerify
		}
		o.TLSConfig = tc
	}
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 3 * time.Second
	o.WriteTimeout = 3 * time.Second
	o.MaxRetries = 1
	return o, nil
}

// urls splits URL into its comma-separated URLs (one at least).
func (r Redis) urls() []string {
	var out []string
	for _, u := range strings.Split(r.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// IsCluster reports whether r names a Redis Cluster: several URLs, or Cluster set.
func (r Redis) IsCluster() bool { return r.Cluster || len(r.urls()) > 1 }

// Client returns a go-redis client for one server: r's first URL.
func (r Redis) Client() (*redis.Client, error) {
	o, err := r.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// Universal returns a go-redis client for r: a *redis.ClusterClient for a
// cluster, else a *redis.Client.
func (r Redis) Universal() (redis.UniversalClient, error) {
	o, err := r.Options()
	if err != nil {
		return nil, err
	}
	return r.NewClient(o), nil
}

// NewClient returns a client with the options o (as Options returns them, maybe
// adjusted): for a cluster, a *redis.ClusterClient with o's credentials, TLS,
// timeouts and retries for every node URL; else redis.NewClient(o).
func (r Redis) NewClient(o *redis.Options) redis.UniversalClient {
	if !r.IsCluster() {
		return redis.NewClient(o)
	}
	var addrs []string
	for _, u := range r.urls() {
		if uo, err := redis.ParseURL(u); err == nil {
			addrs = append(addrs, uo.Addr)
		}
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolTimeout: o.PoolTimeout, MaxRetries: o.MaxRetries, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		// go-redis reloads the slot map on MOVED replies, but a master that died
		// answers nothing: without a short interval its slots stay routed to it
		// for the default 60 s after a failover.
		ClusterStateReloadInterval: ClusterReload,
	})
}

// ClusterReload is how often a Redis Cluster client reloads the slot map (at
// most; only while it sends commands), which bounds how long a failover stalls
// the pipeline.
const ClusterReload = 2 * time.Second

// redacted replaces secrets in logs and errors.
const redacted = "xxxxx"

// Redact returns u, a URL or a comma-separated list of them, with the secrets
// replaced by "xxxxx", for logs and errors: in "scheme://user:password@host" the
// password, in "scheme://token@host" the token. Strings without a scheme are
// treated alike ("user:password@host", "token@host"); parts without '@' are
// returned unchanged. The last '@' of a part ends its credentials, so a password
// holding '@', ':' or '/' is hidden whole.
func Redact(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		prefix, cred, rest, ok := splitCredentials(p)
		if !ok {
			continue
		}
		if user, _, hasPass := strings.Cut(cred, ":"); hasPass {
			parts[i] = prefix + user + ":" + redacted + rest
		} else {
			parts[i] = prefix + redacted + rest
		}
	}
	return strings.Join(parts, ",")
}

// splitCredentials splits one URL into the text before its credentials (the
// scheme and "://", if any), the credentials and the rest from the last '@' on.
func splitCredentials(p string) (prefix, cred, rest string, ok bool) {
	at := strings.LastIndex(p, "@")
	if at < 0 {
		return "", "", p, false
	}
	start := 0
	if i := strings.Index(p, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return p[:start], p[start:at], p[at:], true
}

// urlSecrets returns the passwords and tokens held by the URLs in u (a
// comma-separated list), as written and URL-decoded.
func urlSecrets(u string) []string {
	var out []string
	for _, p := range strings.Split(u, ",") {
		_, cred, _, ok := splitCredentials(p)
		if !ok {
			continue
		}
		secret := cred
		if _, pass, hasPass := strings.Cut(cred, ":"); hasPass {
			secret = pass
		}
		out = append(out, secret)
		if dec, err := url.PathUnescape(secret); err == nil && dec != secret {
			out = append(out, dec)
		}
	}
	return out
}

// scrub returns err unchanged when its text holds none of the secrets, and
// otherwise a new error with the same text but each secret replaced by "xxxxx"
// (the original is dropped, so its text cannot surface through Unwrap).
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	// Longest first, so a secret that holds another is hidden whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, redacted)
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
