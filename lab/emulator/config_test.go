package emulator

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Addr = "nohost"
	c.Path = "stream"
	c.Speed = -1
	c.MaxConns = 0
	c.CutEvery = -2
	c.SilentAfter = 3
	c.ErrorOnResume = -1
	c.ConnLifetime = -time.Second
	c.Retention = -time.Hour
	c.RetryAfter = -time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"addr", "path", "speed", "max-conns", "cut-every", "silent-for", "error-on-resume", "conn-lifetime", "retention", "retry-after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestFlagsWithEnvironment(t *testing.T) {
	env := map[string]string{
		"WIKIFLOW_EMULATOR_SPEED":      "10",
		"WIKIFLOW_EMULATOR_SILENT_FOR": "2s",
		"WIKIFLOW_EMULATOR_MAX_CONNS":  "9",
	}
	f := cli.New("emulator", "test", "", func(k string) string { return env[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"--loop", "--canary-every", "5", "--max-conns", "2"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Speed = 10
	want.SilentFor = 2 * time.Second
	want.MaxConns = 2 // the command line wins over the environment
	want.Loop = true
	want.CanaryEvery = 5
	if c != want {
		t.Errorf("config %+v, want %+v", c, want)
	}
}
