package brokers

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// serverLog collects what an embedded nats-server logs, debug and trace included.
type serverLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *serverLog) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, level+" "+format+"\n", v...)
}

func (l *serverLog) Noticef(f string, v ...any) { l.add("INF", f, v...) }
func (l *serverLog) Warnf(f string, v ...any)   { l.add("WRN", f, v...) }
func (l *serverLog) Fatalf(f string, v ...any)  { l.add("FTL", f, v...) }
func (l *serverLog) Errorf(f string, v ...any)  { l.add("ERR", f, v...) }
func (l *serverLog) Debugf(f string, v ...any)  { l.add("DBG", f, v...) }
func (l *serverLog) Tracef(f string, v ...any)  { l.add("TRC", f, v...) }

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNATS runs an embedded nats-server with opts (host and port filled in) and
// returns its nats:// URL (tls:// works too when TLS is on) and its log. It stops when the test ends.
func startNATS(t *testing.T, opts *natsserver.Options) (string, *serverLog) {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.NoSigs = true
	log := &serverLog{}
	srv := testenv.NATSLogged(t, opts, log)
	url := srv.ClientURL()
	return "nats://" + url[strings.Index(url, "://")+3:], log
}

// natsTLS is the server side TLS configuration for p's server certificate.
func natsTLS(p *pki) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
}

// roundTrip proves nc works: a message published on a fresh subject comes back.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	subj := fmt.Sprintf("test.brokers.%d", time.Now().UnixNano())
	sub, err := nc.SubscribeSync(subj)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := nc.Publish(subj, []byte("ping")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if string(msg.Data) != "ping" {
		t.Fatalf("received %q, want ping", msg.Data)
	}
}

// connect runs n.Connect and closes the connection when the test ends.
func connect(t *testing.T, n NATS) (*nats.Conn, error) {
	t.Helper()
	nc, err := n.Connect("brokers-test")
	if nc != nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestNATSTLS(t *testing.T) {
	const user, pass = "wf", "nats-tls-pa55word"
	p := newPKI(t, "nats")
	other := newPKI(t, "other")
	plainURL, slog := startNATS(t, &natsserver.Options{
		TLS:        true,
		TLSConfig:  natsTLS(p),
		TLSTimeout: 2,
		Users:      []*natsserver.User{{Username: user, Password: pass}},
	})
	tlsURL := strings.Replace(plainURL, "nats://", "tls://", 1)

	t.Run("CA trusted", func(t *testing.T) {
		nc, err := connect(t, NATS{URL: tlsURL, User: user, Password: pass, TLS: TLS{CAFile: p.CAFile}})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if !nc.TLSRequired() {
			t.Error("server does not report TLS as required")
		}
		if _, err := nc.TLSConnectionState(); err != nil {
			t.Errorf("connection is not TLS: %v", err)
		}
		roundTrip(t, nc)
	})
	t.Run("nats URL with CA", func(t *testing.T) {
		nc, err := connect(t, NATS{URL: plainURL, User: user, Password: pass, TLS: TLS{CAFile: p.CAFile}})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		roundTrip(t, nc)
	})

	failures := []struct {
		name string
		n    NATS
		want string
	}{
		{"no CA", NATS{URL: tlsURL, User: user, Password: pass}, "certificate"},
		{"other CA", NATS{URL: tlsURL, User: user, Password: pass, TLS: TLS{CAFile: other.CAFile}}, "certificate"},
		{"nats URL, no CA", NATS{URL: plainURL, User: user, Password: pass}, "certificate"},
		{"credentials in URL, no CA", NATS{URL: "tls://" + user + ":" + pass + "@" + strings.TrimPrefix(plainURL, "nats://")}, "certificate"},
		{"missing CA file", NATS{URL: tlsURL, User: user, Password: pass, TLS: TLS{CAFile: filepath.Join(t.TempDir(), "none.pem")}}, "read CA file"},
		{"CA file without PEM", NATS{URL: tlsURL, User: user, Password: pass, TLS: TLS{CAFile: writeFile(t, "ca.pem", pass)}}, "holds no PEM certificate"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := connect(t, tc.n)
			if err == nil {
				t.Fatalf("connected (%v), want an error", nc.ConnectedUrlRedacted())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), pass)
		})
	}
	assertNoSecret(t, "nats-server log", slog.String(), pass)
}

func TestNATSUserPassword(t *testing.T) {
	const user, pass, wrong = "wf", "right-nats-pa55", "wrong-nats-pa55"
	url, slog := startNATS(t, &natsserver.Options{Users: []*natsserver.User{{Username: user, Password: pass}}})
	hostPort := strings.TrimPrefix(url, "nats://")

	for _, tc := range []struct {
		name string
		n    NATS
	}{
		{"fields", NATS{URL: url, User: user, Password: pass}},
		{"in URL", NATS{URL: "nats://" + user + ":" + pass + "@" + hostPort}},
		{"in second URL of list", NATS{URL: "nats://127.0.0.1:1," + "nats://" + user + ":" + pass + "@" + hostPort}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := connect(t, tc.n)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			roundTrip(t, nc)
		})
	}
	for _, tc := range []struct {
		name string
		n    NATS
	}{
		{"wrong password", NATS{URL: url, User: user, Password: wrong}},
		{"wrong password in URL", NATS{URL: "nats://" + user + ":" + wrong + "@" + hostPort}},
		{"no password", NATS{URL: url}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connect(t, tc.n)
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("error %v, want nats.ErrAuthorization", err)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), pass, wrong)
		})
	}
	logText := slog.String()
	if !strings.Contains(logText, "Authorization Violation") {
		t.Errorf("the server log does not show the refused logins:\n%s", logText)
	}
	assertNoSecret(t, "nats-server log", logText, pass, wrong)
}

func TestNATSToken(t *testing.T) {
	const token, wrong = "s3cret-nats-token", "wrong-nats-token"
	url, slog := startNATS(t, &natsserver.Options{Authorization: token})
	nc, err := connect(t, NATS{URL: url, Token: token})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	roundTrip(t, nc)
	_, err = connect(t, NATS{URL: url, Token: wrong})
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong token: error %v, want nats.ErrAuthorization", err)
	}
	assertNoSecret(t, "error", err.Error(), token, wrong)
	assertNoSecret(t, "nats-server log", slog.String(), token, wrong)
}

func TestNATSNKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	url, slog := startNATS(t, &natsserver.Options{Nkeys: []*natsserver.NkeyUser{{Nkey: pub}}})

	nc, err := connect(t, NATS{URL: url, NKeyFile: writeFile(t, "user.nk", string(seed)+"\n")})
	if err != nil {
		t.Fatalf("connect with the NKey seed: %v", err)
	}
	roundTrip(t, nc)

	stranger, _ := nkeys.CreateUser()
	strangerSeed, _ := stranger.Seed()
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	// A corrupted seed: valid prefix, last characters changed.
	broken := string(seed[:len(seed)-4]) + "AAAA"
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown user", writeFile(t, "stranger.nk", string(strangerSeed)), "Authorization Violation"},
		{"account seed", writeFile(t, "account.nk", string(accountSeed)), "not a valid nkey user seed"},
		{"corrupted seed", writeFile(t, "broken.nk", broken), "nats nkey"},
		{"missing file", filepath.Join(t.TempDir(), "none.nk"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connect(t, NATS{URL: url, NKeyFile: tc.file})
			if err == nil {
				t.Fatal("connected, want an error")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), string(seed), string(strangerSeed), string(accountSeed), broken)
		})
	}
	assertNoSecret(t, "nats-server log", slog.String(), string(seed), string(strangerSeed))
}

// operatorServer starts a nats-server in operator (JWT) mode trusting a fresh
// operator with one account; it returns the URL and the account's key pair.
func operatorServer(t *testing.T) (string, nkeys.KeyPair, *serverLog) {
	t.Helper()
	operator, _ := nkeys.CreateOperator()
	operatorPub, _ := operator.PublicKey()
	account, _ := nkeys.CreateAccount()
	accountPub, _ := account.PublicKey()
	accountJWT, err := jwt.NewAccountClaims(accountPub).Encode(operator)
	if err != nil {
		t.Fatalf("account JWT: %v", err)
	}
	resolver := &natsserver.MemAccResolver{}
	if err := resolver.Store(accountPub, accountJWT); err != nil {
		t.Fatal(err)
	}
	url, log := startNATS(t, &natsserver.Options{TrustedKeys: []string{operatorPub}, AccountResolver: resolver})
	return url, account, log
}

// credsFile writes a credentials file for a new user signed by account.
func credsFile(t *testing.T, account nkeys.KeyPair, name string) (path string, seed []byte) {
	t.Helper()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	seed, _ = user.Seed()
	claims := jwt.NewUserClaims(userPub)
	claims.Name = name
	userJWT, err := claims.Encode(account)
	if err != nil {
		t.Fatalf("user JWT: %v", err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name+".creds", string(creds)), seed
}

func TestNATSCredsFile(t *testing.T) {
	url, account, slog := operatorServer(t)
	good, seed := credsFile(t, account, "wikiflow")
	nc, err := connect(t, NATS{URL: url, CredsFile: good})
	if err != nil {
		t.Fatalf("connect with the credentials file: %v", err)
	}
	roundTrip(t, nc)

	foreign, _ := nkeys.CreateAccount()
	foreignFile, foreignSeed := credsFile(t, foreign, "foreign")
	for _, tc := range []struct {
		name, file, want string
	}{
		{"account unknown to the operator", foreignFile, "Authorization Violation"},
		{"not a credentials file", writeFile(t, "garbage.creds", "password=hunter2-garbage\n"), "no nkey seed found"},
		{"missing file", filepath.Join(t.TempDir(), "none.creds"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connect(t, NATS{URL: url, CredsFile: tc.file})
			if err == nil {
				t.Fatal("connected, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), string(seed), string(foreignSeed), "hunter2-garbage")
		})
	}
	assertNoSecret(t, "nats-server log", slog.String(), string(seed), string(foreignSeed))
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
