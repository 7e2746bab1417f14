package api

import (
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestStackGivesTheAPIItsOwnPorts takes the api's command line from the native
// stack (internal/stack, which starts it; its own test runs a stand-in with it)
// on ports other than the defaults, and checks that the API's flags parse it
// into the stack's own ports: its address, its Redis and the health ports whose
// metrics pages it appends (not the defaults 8081-8083, which another stack may
// hold).
func TestStackGivesTheAPIItsOwnPorts(t *testing.T) {
	port := map[string]int{}
	env := map[string]string{"HOME": t.TempDir()}
	for _, name := range []string{"API", "REDIS", "INGEST_HEALTH", "BRIDGE_HEALTH", "AGGREGATE_HEALTH"} {
		port[name] = testenv.FreePort(t)
		env[fmt.Sprintf("STACK_%s_PORT", name)] = fmt.Sprint(port[name])
	}
	c, err := stack.FromEnv(t.TempDir(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	args, err := c.ServiceArgs("api")
	if err != nil {
		t.Fatal(err)
	}
	if len(args) < 2 || args[1] != "api" {
		t.Fatalf("the stack does not start the api: %q", args)
	}
	f := cli.New("api", "serve", "", func(string) string { return "" }, io.Discard)
	var cfg Config
	Flags(f, &cfg)
	if err := f.Parse(args[2:]); err != nil {
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
