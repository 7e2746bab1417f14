package api

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestStackGivesTheAPIItsOwnPorts starts the api component the way
// scripts/stack.sh does, on ports other than the defaults, with a stand-in
// binary that records its arguments, and checks that the API is told the
// stack's own ports: its address, its Redis and the health ports whose metrics
// pages it appends (not the defaults 8081-8083, which another stack may hold).
func TestStackGivesTheAPIItsOwnPorts(t *testing.T) {
	bash := external(t, "bash", "apt-get install bash")
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	fake := filepath.Join(dir, "wikiflow")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + ".tmp && mv " + argsFile + ".tmp " + argsFile + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	port := map[string]int{}
	for _, name := range []string{"API", "REDIS", "INGEST_HEALTH", "BRIDGE_HEALTH", "AGGREGATE_HEALTH"} {
		port[name] = testenv.FreePort(t)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Sourcing the script with no command prints its usage and defines its functions.
	cmd := exec.Command(bash, "-c", `source scripts/stack.sh >/dev/null && start_service api`)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "STACK_HOME="+home, "WIKIFLOW_BIN="+fake)
	for name, p := range port {
		cmd.Env = append(cmd.Env, fmt.Sprintf("STACK_%s_PORT=%d", name, p))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start_service api: %v\n%s", err, out)
	}
	var raw []byte
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile(argsFile); err == nil {
			raw = b
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	args := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(args) == 0 || args[0] != "api" {
		t.Fatalf("the stand-in was not started as the api: %q", raw)
	}
	f := cli.New("api", "serve", "", func(string) string { return "" }, io.Discard)
	var cfg Config
	Flags(f, &cfg)
	if err := f.Parse(args[1:]); err != nil {
		t.Fatalf("the api's arguments %q do not parse: %v", args, err)
	}
	want := []string{}
	for _, name := range []string{"INGEST_HEALTH", "BRIDGE_HEALTH", "AGGREGATE_HEALTH"} {
		want = append(want, fmt.Sprintf("http://127.0.0.1:%d/metrics", port[name]))
	}
	if !slices.Equal(cfg.StageMetrics, want) {
		t.Errorf("stage metrics %q, want %q (args %q)", cfg.StageMetrics, want, args)
	}
	if a := fmt.Sprintf("127.0.0.1:%d", port["API"]); cfg.Addr != a {
		t.Errorf("addr %q, want %q", cfg.Addr, a)
	}
	if r := fmt.Sprintf("redis://127.0.0.1:%d/0", port["REDIS"]); cfg.Redis.URL != r {
		t.Errorf("redis url %q, want %q", cfg.Redis.URL, r)
	}
}
