package brokers

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// Environment of the SASL integration test: a SASL_PLAINTEXT or SASL_SSL listener
// and its credentials. When unset, the test uses the SCRAM-SHA-512 listener of the
// native stack (go tool task infra) with a user it creates.
const (
	// envKafkaSASL is the address of the SASL listener.
	envKafkaSASL = "WIKIFLOW_TEST_KAFKA_SASL"
	// envKafkaSASLUser and envKafkaSASLPassword are the SCRAM credentials.
	envKafkaSASLUser     = "WIKIFLOW_TEST_KAFKA_SASL_USER"
	envKafkaSASLPassword = "WIKIFLOW_TEST_KAFKA_SASL_PASSWORD"
	// envKafkaSASLMechanism is the mechanism (default SCRAM-SHA-512).
	envKafkaSASLMechanism = "WIKIFLOW_TEST_KAFKA_SASL_MECHANISM"
	// envKafkaSASLCA is the CA file of a SASL_SSL listener (unset: no TLS).
	envKafkaSASLCA = "WIKIFLOW_TEST_KAFKA_SASL_CA"
)

func TestKafkaSecuritySettings(t *testing.T) {
	p := newPKI(t, "kafka")
	for _, tc := range []struct {
		name, mechanism string
		tls             TLS
		wantMech        string
		wantTLS         bool
	}{
		{"plaintext", "", TLS{}, "", false},
		{"SCRAM-SHA-512 over TLS", "SCRAM-SHA-512", TLS{CAFile: p.CAFile}, "SCRAM-SHA-512", true},
		{"scram-sha-256, lower case", "scram-sha-256", TLS{}, "SCRAM-SHA-256", false},
		{"PLAIN with mutual TLS", "PLAIN", TLS{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}, "PLAIN", true},
		{"TLS with system CAs", "", TLS{Enable: true}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := Kafka{Brokers: []string{"kafka.example:9093"}, Topic: "t", SASLMechanism: tc.mechanism, User: "alice", Password: "kafka-s3cret", TLS: tc.tls}
			if err := k.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tr, err := k.Transport()
			if err != nil {
				t.Fatalf("Transport: %v", err)
			}
			d, err := k.Dialer()
			if err != nil {
				t.Fatalf("Dialer: %v", err)
			}
			cl, err := k.Client()
			if err != nil {
				t.Fatalf("Client: %v", err)
			}
			if cl.Transport == nil {
				t.Error("Client has no transport")
			}
			if got := cl.Addr.String(); got != "kafka.example:9093" {
				t.Errorf("Client address %q", got)
			}
			for what, mech := range map[string]interface{ Name() string }{"Transport": tr.SASL, "Dialer": d.SASLMechanism} {
				switch {
				case tc.wantMech == "" && mech != nil:
					t.Errorf("%s has SASL %s, want none", what, mech.Name())
				case tc.wantMech != "" && mech == nil:
					t.Errorf("%s has no SASL, want %s", what, tc.wantMech)
				case tc.wantMech != "" && mech.Name() != tc.wantMech:
					t.Errorf("%s SASL %s, want %s", what, mech.Name(), tc.wantMech)
				}
			}
			if pm, ok := tr.SASL.(plain.Mechanism); ok && (pm.Username != "alice" || pm.Password != "kafka-s3cret") {
				t.Errorf("PLAIN credentials %q/%q", pm.Username, pm.Password)
			}
			for what, tlsOn := range map[string]bool{"Transport": tr.TLS != nil, "Dialer": d.TLS != nil} {
				if tlsOn != tc.wantTLS {
					t.Errorf("%s TLS %v, want %v", what, tlsOn, tc.wantTLS)
				}
			}
			if tc.tls.CAFile != "" && (tr.TLS.RootCAs == nil || !tr.TLS.RootCAs.Equal(p.Pool)) {
				t.Error("Transport TLS does not trust exactly the CA file")
			}
			if tc.tls.CertFile != "" && len(d.TLS.Certificates) != 1 {
				t.Errorf("Dialer TLS has %d client certificates, want 1", len(d.TLS.Certificates))
			}
		})
	}
}

func TestKafkaValidate(t *testing.T) {
	const secret = "kafka-pa55-\u0007bell"
	for _, tc := range []struct {
		name string
		k    Kafka
		want []string
	}{
		{"unknown mechanism", Kafka{Brokers: []string{"b:9092"}, Topic: "t", SASLMechanism: "GSSAPI", User: "u", Password: secret}, []string{`"GSSAPI" is not one of`}},
		{"no user or password", Kafka{Brokers: []string{"b:9092"}, Topic: "t", SASLMechanism: "SCRAM-SHA-512"}, []string{"kafka-user: needed", "kafka-password: needed"}},
		{"password SASLprep rejects", Kafka{Brokers: []string{"b:9092"}, Topic: "t", SASLMechanism: "SCRAM-SHA-512", User: "u", Password: secret}, []string{"kafka-password holds a character"}},
		{"user SASLprep rejects", Kafka{Brokers: []string{"b:9092"}, Topic: "t", SASLMechanism: "SCRAM-SHA-256", User: "u\u0007", Password: secret}, []string{"kafka-user holds a character"}},
		{"everything missing", Kafka{SASLMechanism: "MD5"}, []string{"kafka-brokers", "kafka-topic", `"MD5"`, "kafka-user", "kafka-password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.k.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			assertNoSecret(t, "Validate error", err.Error(), secret, "pa55")
			if tc.k.SASLMechanism != "" && !strings.HasPrefix(tc.name, "no user") {
				_, terr := tc.k.Transport()
				_, derr := tc.k.Dialer()
				if terr == nil || derr == nil {
					t.Fatalf("Transport error %v, Dialer error %v: want both to fail", terr, derr)
				}
				assertNoSecret(t, "Transport error", terr.Error(), secret, "pa55")
				assertNoSecret(t, "Dialer error", derr.Error(), secret, "pa55")
			}
		})
	}
	_, err := Kafka{Brokers: []string{"b:9092"}, Topic: "t", TLS: TLS{CAFile: "/nonexistent/ca.pem"}}.Transport()
	if err == nil || !strings.Contains(err.Error(), "kafka TLS") {
		t.Errorf("missing CA file: error %v, want a kafka TLS error", err)
	}
}

// saslKafka returns the settings of the SASL listener named by the environment,
// or skips.
// stackSASL is the SCRAM-SHA-512 listener of the project's native Kafka
// (stack/kafka/server.properties), used when the environment names none.
const stackSASL = "127.0.0.1:9094"

func saslKafka(t *testing.T) Kafka {
	t.Helper()
	addr, user, pass := os.Getenv(envKafkaSASL), os.Getenv(envKafkaSASLUser), os.Getenv(envKafkaSASLPassword)
	mech := os.Getenv(envKafkaSASLMechanism)
	if mech == "" {
		mech = "SCRAM-SHA-512"
	}
	if addr == "" {
		addr, mech = stackSASL, "SCRAM-SHA-512"
		user, pass = stackSCRAMUser(t, addr)
	}
	if user == "" || pass == "" {
		t.Fatalf("%s is set: %s and %s must be set too", envKafkaSASL, envKafkaSASLUser, envKafkaSASLPassword)
	}
	k := Kafka{Brokers: []string{addr}, Topic: "t", SASLMechanism: mech, User: user, Password: pass}
	if ca := os.Getenv(envKafkaSASLCA); ca != "" {
		k.TLS = TLS{CAFile: ca}
	}
	if err := k.Validate(); err != nil {
		t.Fatalf("SASL settings from the environment: %v", err)
	}
	return k
}

// stackSCRAMUser creates a SCRAM-SHA-512 user through the stack's plaintext
// listener (KIP-554, AlterUserScramCredentials) and returns its credentials, once
// the SASL listener at addr answers.
func stackSCRAMUser(t *testing.T, addr string) (user, pass string) {
	t.Helper()
	plain := testenv.KafkaAddr(t)
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		msg := fmt.Sprintf("the stack's SASL listener %s is not reachable (%v): restart the brokers with `go tool task down infra`", addr, err)
		if testenv.InCI() {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	conn.Close()
	user = fmt.Sprintf("wikiflow-test-%d", time.Now().UnixNano())
	pass = fmt.Sprintf("pw-%d-secret", time.Now().UnixNano())
	salt := []byte(fmt.Sprintf("salt-%d", time.Now().UnixNano()))
	const iterations = 4096
	salted, err := pbkdf2.Key(sha512.New, pass, salt, iterations, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(plain), Timeout: 10 * time.Second}
	resp, err := cl.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
		Upsertions: []kafka.UserScramCredentialsUpsertion{{
			Name: user, Mechanism: kafka.ScramMechanismSha512, Iterations: iterations, Salt: salt, SaltedPassword: salted,
		}},
	})
	if err == nil {
		for _, r := range resp.Results {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		t.Fatalf("create SCRAM user: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = cl.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
			Deletions: []kafka.UserScramCredentialsDeletion{{Name: user, Mechanism: kafka.ScramMechanismSha512}},
		})
	})
	return user, pass
}

func TestKafkaSASLIntegration(t *testing.T) {
	k := saslKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl, err := k.Client()
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.TopicWith(t, cl, 1)

	tr, err := k.Transport()
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Transport: tr, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	value := fmt.Sprintf("sasl-record-%d", time.Now().UnixNano())
	// A fresh topic's leader may not be known at once.
	for attempt := 0; ; attempt++ {
		err = w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte(value)})
		if err == nil || attempt == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("produce through SASL: %v", err)
	}

	d, err := k.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: topic, Partition: 0, Dialer: d, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("fetch through SASL: %v", err)
	}
	if string(msg.Value) != value || string(msg.Key) != "k" {
		t.Errorf("fetched %q=%q, want k=%q", msg.Key, msg.Value, value)
	}

	t.Run("wrong password", func(t *testing.T) {
		bad := k
		bad.Password = "wrong-" + k.Password
		secrets := []string{k.Password, bad.Password}
		cl, err := bad.Client()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil {
			t.Fatal("metadata with a wrong password succeeded")
		}
		t.Logf("metadata with a wrong password: %v", err)
		assertNoSecret(t, "client error", fmt.Sprintf("%v %+v", err, err), secrets...)
		d, err := bad.Dialer()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := d.DialContext(ctx, "tcp", k.Brokers[0])
		if err == nil {
			conn.Close()
			t.Fatal("dial with a wrong password succeeded")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authentication") {
			t.Errorf("dial error %q does not mention authentication", err)
		}
		t.Logf("dial with a wrong password: %v", err)
		assertNoSecret(t, "dial error", fmt.Sprintf("%v %+v", err, err), secrets...)
	})
}
