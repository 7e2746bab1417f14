package brokers

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		secrets  []string
	}{
		{"redis://alice:s3cret@127.0.0.1:6379/0", "redis://alice:xxxxx@127.0.0.1:6379/0", []string{"s3cret"}},
		{"rediss://:only-pass@redis.example:6380", "rediss://:xxxxx@redis.example:6380", []string{"only-pass"}},
		{"nats://tok3n-value@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222", []string{"tok3n-value"}},
		{
			"nats://a:pw-one@n1:4222,nats://n2:4222, tls://b:pw-two@n3:4222",
			"nats://a:xxxxx@n1:4222,nats://n2:4222, tls://b:xxxxx@n3:4222",
			[]string{"pw-one", "pw-two"},
		},
		{"redis://alice:p@ss/w#rd@host:6379/0", "redis://alice:xxxxx@host:6379/0", []string{"p@ss", "w#rd"}},
		{"redis://alice:p%40ss%3Aw@host:6379", "redis://alice:xxxxx@host:6379", []string{"p%40ss", "%3Aw"}},
		{"redis://alice:bad%zzescape@host", "redis://alice:xxxxx@host", []string{"bad%zzescape"}},
		{"alice:not-a-url-secret@host:4222", "alice:xxxxx@host:4222", []string{"not-a-url-secret"}},
		{"bare-token-secret@host", "xxxxx@host", []string{"bare-token-secret"}},
		{"127.0.0.1:9092,127.0.0.1:9093", "127.0.0.1:9092,127.0.0.1:9093", nil},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", nil},
		{"", "", nil},
	} {
		got := Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		assertNoSecret(t, "Redact("+tc.in+")", got, tc.secrets...)
	}
}

func TestScrub(t *testing.T) {
	base := errors.New("dial nats://u:abc@h and nats://u:abcdef@h")
	got := scrub(base, "abc", "abcdef")
	if want := "dial nats://u:xxxxx@h and nats://u:xxxxx@h"; got.Error() != want {
		t.Errorf("scrub = %q, want %q", got, want)
	}
	if errors.Unwrap(got) != nil || errors.Is(got, base) {
		t.Error("the scrubbed error still reaches the original through Unwrap")
	}
	clean := fmt.Errorf("wrapped: %w", base)
	if got := scrub(clean, "not-there", ""); got != clean {
		t.Errorf("an error without secrets was replaced: %v", got)
	}
	if scrub(nil, "x") != nil {
		t.Error("scrub(nil) is not nil")
	}
	if got := urlSecrets("nats://a:p%40w@h,nats://tok@h2,nats://h3"); strings.Join(got, " ") != "p%40w p@w tok" {
		t.Errorf("urlSecrets = %q", got)
	}
}

// TestErrorsHoldNoSecrets collects the errors of every failing path of the package
// and checks that no way of printing or logging them shows a secret.
func TestErrorsHoldNoSecrets(t *testing.T) {
	const (
		pass   = "leak-check-pa55"
		wrong  = "leak-check-wrong"
		token  = "leak-check-t0ken"
		scram  = "leak-check-\u0007scram"
		inURL  = "leak-check-url-pw"
		seedIn = "SUAleakcheckseedxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	)
	secrets := []string{pass, wrong, token, scram, inURL, seedIn, "leak-check"}
	p := newPKI(t, "leak")
	natsURL, natsLog := startNATS(t, &natsserver.Options{Users: []*natsserver.User{{Username: "u", Password: pass}}})
	hostPort := strings.TrimPrefix(natsURL, "nats://")
	tlsNATS, _ := startNATS(t, &natsserver.Options{
		TLS:       true,
		TLSConfig: natsTLS(p),
		Users:     []*natsserver.User{{Username: "u", Password: pass}},
	})
	redisPort, redisOut := startRedis(t, false, "user default on >"+pass+" ~* &* +@all")
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort)
	tmp := t.TempDir()

	natsErr := func(n NATS) error {
		nc, err := n.Connect("secrets-test")
		if nc != nil {
			nc.Close()
		}
		return err
	}
	redisErr := func(r Redis) error { return ping(t, r) }
	kafkaErr := func(k Kafka) error {
		if _, err := k.Transport(); err != nil {
			return err
		}
		_, err := k.Dialer()
		return err
	}

	cases := []struct {
		name string
		err  error
	}{
		{"NATS wrong password", natsErr(NATS{URL: natsURL, User: "u", Password: wrong})},
		{"NATS wrong password in URL", natsErr(NATS{URL: "nats://u:" + wrong + "@" + hostPort})},
		{"NATS URL that does not parse", natsErr(NATS{URL: "nats://u:" + inURL + "%zz@" + hostPort})},
		{"NATS list with a URL that does not parse", natsErr(NATS{URL: natsURL + ",nats://u:" + inURL + "%zz@" + hostPort})},
		{"NATS wrong token", natsErr(NATS{URL: natsURL, Token: token})},
		{"NATS TLS without CA", natsErr(NATS{URL: tlsNATS, User: "u", Password: pass})},
		{"NATS nkey file that is no seed", natsErr(NATS{URL: natsURL, NKeyFile: writeFile(t, "bad.nk", seedIn)})},
		{"NATS creds file that is no creds", natsErr(NATS{URL: natsURL, CredsFile: writeFile(t, "bad.creds", seedIn)})},
		{"NATS CA file without PEM", natsErr(NATS{URL: natsURL, TLS: TLS{CAFile: writeFile(t, "ca.pem", pass)}})},
		{"Redis wrong password", redisErr(Redis{URL: redisURL, Password: wrong})},
		{"Redis wrong password in URL", redisErr(Redis{URL: fmt.Sprintf("redis://default:%s@127.0.0.1:%d/0", wrong, redisPort)})},
		{"Redis URL that does not parse", redisErr(Redis{URL: "redis://default:" + inURL + "%zz@127.0.0.1:1/0"})},
		{"Redis URL of another scheme", redisErr(Redis{URL: "http://default:" + inURL + "@127.0.0.1:1/0"})},
		{"Redis TLS without CA", redisErr(Redis{URL: "rediss://default:" + pass + "@127.0.0.1:1/0", TLS: TLS{CAFile: filepath.Join(tmp, "none.pem")}})},
		{"Kafka unknown mechanism", Kafka{Brokers: []string{"b:1"}, Topic: "t", SASLMechanism: "OAUTHBEARER", User: "u", Password: pass}.Validate()},
		{"Kafka SCRAM password SASLprep rejects", kafkaErr(Kafka{Brokers: []string{"b:1"}, Topic: "t", SASLMechanism: "SCRAM-SHA-512", User: "u", Password: scram})},
		{"Kafka SCRAM password SASLprep rejects (Validate)", Kafka{Brokers: []string{"b:1"}, Topic: "t", SASLMechanism: "SCRAM-SHA-256", User: "u", Password: scram}.Validate()},
		{"Kafka client key without certificate", kafkaErr(Kafka{Brokers: []string{"b:1"}, Topic: "t", TLS: TLS{KeyFile: writeFile(t, "key.pem", pass)}})},
	}
	var logBuf bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logBuf, nil))
	js := slog.New(slog.NewJSONHandler(&logBuf, nil))
	for _, tc := range cases {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, tc.err)
		assertNoSecret(t, tc.name, fmt.Sprintf("%v | %+v | %q | %#v", tc.err, tc.err, tc.err, tc.err), secrets...)
		for e := errors.Unwrap(tc.err); e != nil; e = errors.Unwrap(e) {
			assertNoSecret(t, tc.name+" (unwrapped)", fmt.Sprintf("%v", e), secrets...)
		}
		text.Error("broker failed", "case", tc.name, "err", tc.err)
		js.Error("broker failed", "case", tc.name, "err", tc.err)
	}
	assertNoSecret(t, "slog output", logBuf.String(), secrets...)
	assertNoSecret(t, "nats-server log", natsLog.String(), secrets...)
	assertNoSecret(t, "redis-server output", redisOut.String(), secrets...)
}
