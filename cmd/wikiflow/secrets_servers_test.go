package main

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// natsWithUsers starts an in-process nats-server with JetStream that admits only
// the given users (name → password) and returns its host:port.
func natsWithUsers(t *testing.T, users map[string]string) string {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	for name, pw := range users {
		opts.Users = append(opts.Users, &natsserver.User{Username: name, Password: pw})
	}
	srv := testenv.NATSWith(t, opts)
	return srv.Addr().String()
}

// redisWithPasswords starts a redis-server of its own on a free port, whose
// default user needs defaultPW and whose user alice needs one of alicePWs, and
// returns its host:port.
func redisWithPasswords(t *testing.T, defaultPW string, alicePWs ...string) string {
	t.Helper()
	bin := promtooltest.Tool(t, "redis-server", "install Redis 7 (Debian: apt-get install redis-server)")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--requirepass", defaultPW, "--user", "alice", "on"}
	for _, pw := range alicePWs {
		args = append(args, ">"+pw)
	}
	args = append(args, "~*", "&*", "+@all")
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}
