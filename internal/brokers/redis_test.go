package brokers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// redisServerBin is the redis-server binary the tests start.
const redisServerBin = "redis-server"

// lockedBuffer is a bytes.Buffer safe for a process writing and a test reading.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRedis runs a test-owned redis-server on a free port with the extra config
// lines (the port line is added: "port" or, with tlsPort, "tls-port" and "port 0").
// It returns the port and the server's output; the server stops when the test
// ends. Without the binary the test skips (fails under CI=true).
func startRedis(t *testing.T, tlsPort bool, conf ...string) (int, *lockedBuffer) {
	t.Helper()
	bin, err := exec.LookPath(redisServerBin)
	if err != nil {
		msg := fmt.Sprintf("%s not found (%v): install Redis 7 (Debian: apt-get install redis-server)", redisServerBin, err)
		if testenv.InCI() {
			t.Fatalf("CI=true: %s", msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	port := testenv.FreePort(t)
	lines := []string{
		"bind 127.0.0.1",
		"dir " + dir,
		`save ""`,
		"appendonly no",
		"daemonize no",
		`logfile ""`,
	}
	if tlsPort {
		lines = append(lines, "port 0", "tls-port "+strconv.Itoa(port))
	} else {
		lines = append(lines, "port "+strconv.Itoa(port))
	}
	lines = append(lines, conf...)
	confFile := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(bin, confFile)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("redis-server exited (%v):\n%s", err, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return port, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %d in 10s:\n%s", port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping connects with r, runs PING and a SET/GET round trip, and returns the first error.
func ping(t *testing.T, r Redis) error {
	t.Helper()
	c, err := r.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	key := fmt.Sprintf("brokers-test-%d", time.Now().UnixNano())
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		return err
	}
	got, err := c.Get(ctx, key).Result()
	if err != nil {
		return err
	}
	if got != "v" {
		return fmt.Errorf("GET %s = %q, want v", key, got)
	}
	return nil
}

func TestRedisACL(t *testing.T) {
	const (
		user, pass       = "alice", "s3cret-alice"
		defaultPass      = "s3cret-default"
		wrong            = "wrong-redis-pa55"
		escaped, decoded = "p%40ss%3Aword", "p@ss:word"
	)
	port, out := startRedis(t, false,
		"user default on >"+defaultPass+" ~* &* +@all",
		"user alice on >"+pass+" ~* &* +@all",
		"user bob on >"+decoded+" ~* &* +@all",
	)
	base := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	hostPort := fmt.Sprintf("127.0.0.1:%d/0", port)

	for _, tc := range []struct {
		name string
		r    Redis
	}{
		{"user and password fields", Redis{URL: base, User: user, Password: pass}},
		{"password only (default user)", Redis{URL: base, Password: defaultPass}},
		{"credentials in URL", Redis{URL: "redis://" + user + ":" + pass + "@" + hostPort}},
		{"escaped password in URL", Redis{URL: "redis://bob:" + escaped + "@" + hostPort}},
		{"fields override URL", Redis{URL: "redis://" + user + ":" + wrong + "@" + hostPort, Password: pass}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ping(t, tc.r); err != nil {
				t.Fatalf("ping: %v", err)
			}
		})
	}

	for _, tc := range []struct {
		name string
		r    Redis
		want string
	}{
		{"wrong password", Redis{URL: base, User: user, Password: wrong}, "WRONGPASS"},
		{"wrong password in URL", Redis{URL: "redis://" + user + ":" + wrong + "@" + hostPort}, "WRONGPASS"},
		{"right password, wrong user", Redis{URL: base, User: "mallory", Password: pass}, "WRONGPASS"},
		{"no credentials", Redis{URL: base}, "NOAUTH"},
		{"URL that does not parse", Redis{URL: "redis://" + user + ":" + pass + "%zz@" + hostPort}, "not a valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ping(t, tc.r)
			if err == nil {
				t.Fatal("ping succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), pass, wrong, defaultPass)
		})
	}

	t.Run("Redact hides URL credentials", func(t *testing.T) {
		u := "redis://" + user + ":" + pass + "@" + hostPort
		got := Redact(u)
		if want := "redis://alice:xxxxx@" + hostPort; got != want {
			t.Errorf("Redact(%q) = %q, want %q", u, got, want)
		}
	})
	assertNoSecret(t, "redis-server output", out.String(), pass, wrong)
}

func TestRedisTLS(t *testing.T) {
	const pass = "s3cret-tls-redis"
	p := newPKI(t, "redis")
	other := newPKI(t, "other")
	tlsConf := func(auth string) []string {
		return []string{
			"tls-cert-file " + p.ServerCert,
			"tls-key-file " + p.ServerKey,
			"tls-ca-cert-file " + p.CAFile,
			"tls-auth-clients " + auth,
			"user default on >" + pass + " ~* &* +@all",
		}
	}
	port, out := startRedis(t, true, tlsConf("no")...)
	hostPort := fmt.Sprintf("127.0.0.1:%d/0", port)
	localhost := fmt.Sprintf("localhost:%d/0", port)

	for _, tc := range []struct {
		name string
		r    Redis
	}{
		{"rediss with CA", Redis{URL: "rediss://" + hostPort, Password: pass, TLS: TLS{CAFile: p.CAFile}}},
		{"rediss by host name", Redis{URL: "rediss://" + localhost, Password: pass, TLS: TLS{CAFile: p.CAFile}}},
		{"rediss with credentials in URL", Redis{URL: "rediss://default:" + pass + "@" + hostPort, TLS: TLS{CAFile: p.CAFile}}},
		{"redis URL with TLS enabled", Redis{URL: "redis://" + hostPort, Password: pass, TLS: TLS{Enable: true, CAFile: p.CAFile}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ping(t, tc.r); err != nil {
				t.Fatalf("ping: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		r    Redis
		want string
	}{
		{"rediss without CA", Redis{URL: "rediss://" + hostPort, Password: pass}, "certificate"},
		{"rediss with another CA", Redis{URL: "rediss://default:" + pass + "@" + hostPort, TLS: TLS{CAFile: other.CAFile}}, "certificate"},
		{"plain redis to the TLS port", Redis{URL: "redis://default:" + pass + "@" + hostPort}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ping(t, tc.r)
			if err == nil {
				t.Fatal("ping succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), pass)
		})
	}

	t.Run("mutual TLS", func(t *testing.T) {
		mport, _ := startRedis(t, true, tlsConf("yes")...)
		u := fmt.Sprintf("rediss://127.0.0.1:%d/0", mport)
		if err := ping(t, Redis{URL: u, Password: pass, TLS: TLS{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}}); err != nil {
			t.Fatalf("ping with the client certificate: %v", err)
		}
		err := ping(t, Redis{URL: u, Password: pass, TLS: TLS{CAFile: p.CAFile}})
		if err == nil {
			t.Fatal("ping without a client certificate succeeded, want an error")
		}
		assertNoSecret(t, "error", err.Error(), pass)
		_, err = Redis{URL: u, TLS: TLS{CAFile: p.CAFile, KeyFile: p.ClientKey}}.Client()
		if err == nil || !strings.Contains(err.Error(), "client certificate") {
			t.Errorf("a key without a certificate: error %v, want a client certificate error", err)
		}
	})
	if t.Failed() {
		t.Logf("redis-server output:\n%s", out.String())
	}
}

func TestRedisOptions(t *testing.T) {
	o, err := Redis{URL: "rediss://alice:from-url@redis.example:6380/2", Password: "from-field"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Username != "alice" || o.Password != "from-field" || o.DB != 2 || o.Addr != "redis.example:6380" {
		t.Errorf("options: user %q password %q db %d addr %q", o.Username, o.Password, o.DB, o.Addr)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" {
		t.Errorf("rediss:// TLS config %+v, want ServerName redis.example", o.TLSConfig)
	}

	o, err = Redis{URL: "rediss://redis.example:6380/0?skip_verify=true", TLS: TLS{Enable: true}}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "redis.example" {
		t.Errorf("skip_verify lost when TLS settings are merged: %+v", o.TLSConfig)
	}

	o, err = Redis{URL: "redis://127.0.0.1:6379/0"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig != nil {
		t.Error("redis:// without TLS settings has a TLS config")
	}

	_, err = Redis{URL: "http://alice:s3cret@host"}.Options()
	if err == nil {
		t.Fatal("http:// accepted")
	}
	assertNoSecret(t, "error", err.Error(), "s3cret")
	var target *os.PathError
	_, err = Redis{URL: "rediss://h:1/0", TLS: TLS{CAFile: "/nonexistent/ca.pem"}}.Options()
	if !errors.As(err, &target) {
		t.Errorf("missing CA file: error %v, want a path error", err)
	}
}
