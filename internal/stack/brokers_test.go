package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startInfra runs Infra for c (its nats-server the repository's) in a test: the
// context ends with the test or after d, the brokers are stopped at the end, and
// their output is logged when the test fails.
func startInfra(t *testing.T, c Config, d time.Duration) (context.Context, *Stack, *bytes.Buffer) {
	t.Helper()
	c.NATSServer = filepath.Join(c.Root, ".wikiflow", "bin", "nats-server")
	out := &bytes.Buffer{}
	s := &Stack{Config: c, Out: out, Err: out}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
		_ = s.Down(context.Background())
		cancel()
	})
	if err := s.Infra(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, s, out
}

// TestBrokersInfraStatusDown starts Kafka, NATS and Redis through the package on
// free ports in a fresh folder, checks that they are healthy and that status
// says so, that a second infra leaves them alone, and that down leaves nothing
// running. It needs java, redis-server and (once) mvn: infra installs what is
// missing where it can, and fails otherwise.
func TestBrokersInfraStatusDown(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("starts a Kafka JVM; skipped with -short")
	}
	root, err := FindRoot("")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	c, err := New(root, home)
	if err != nil {
		t.Fatal(err)
	}
	freePorts(t, &c)
	ctx, s, out := startInfra(t, c, 5*time.Minute)
	for _, name := range Brokers {
		if err := s.Check(ctx, name); err != nil {
			t.Errorf("%s after infra: %v", name, err)
		}
	}
	var status bytes.Buffer
	if err := s.Status(ctx, &status); err != nil {
		t.Fatal(err)
	}
	for _, name := range Brokers {
		re := regexp.MustCompile(`(?m)^` + name + `\s+[0-9]+\s+running\s+` + joinPorts(c.Ports.Of(name)) + `\s+ok$`)
		if !re.MatchString(status.String()) {
			t.Errorf("status has no healthy %s row:\n%s", name, status.String())
		}
	}
	if !regexp.MustCompile(`(?m)^api\s+-\s+stopped\s+[0-9]+\s+-$`).MatchString(status.String()) {
		t.Errorf("status has no stopped api row:\n%s", status.String())
	}
	out.Reset()
	if err := s.Infra(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range Brokers {
		if !strings.Contains(out.String(), name+": already running") {
			t.Errorf("a second infra restarted %s:\n%s", name, out.String())
		}
	}
	if err := s.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := s.Leftovers(); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
	for _, name := range Brokers {
		for _, p := range c.Ports.Of(name) {
			if PortOpen(p) {
				t.Errorf("%s's port %d is still open after down", name, p)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(c.DataDir(), "kafka", "meta.properties")); err != nil {
		t.Errorf("down removed Kafka's data: %v", err)
	}
}
