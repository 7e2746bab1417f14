package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPrecedenceCommandLineEnvDefault(t *testing.T) {
	env := map[string]string{"W_A": "from-env", "W_B": "from-env", "W_D": "3s", "W_L": "x, y"}
	var a, b, c string
	var d time.Duration
	var l []string
	f := New("test", "a test", "", func(k string) string { return env[k] }, &bytes.Buffer{})
	f.String(&a, "a", "W_A", "def", "")
	f.String(&b, "b", "W_B", "def", "")
	f.String(&c, "c", "W_C", "def", "")
	f.Duration(&d, "d", "W_D", time.Second, "")
	f.List(&l, "l", "W_L", "z", "")
	if err := f.Parse([]string{"-a", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if a != "from-flag" || b != "from-env" || c != "def" || d != 3*time.Second || strings.Join(l, "+") != "x+y" {
		t.Fatalf("a=%q b=%q c=%q d=%v l=%v", a, b, c, d, l)
	}
	if f.Err() != nil {
		t.Fatal(f.Err())
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	env := map[string]string{"W_N": "many", "W_D": "soon"}
	var n int
	var d time.Duration
	f := New("test", "", "", func(k string) string { return env[k] }, &bytes.Buffer{})
	f.Int(&n, "n", "W_N", 1, "")
	f.Duration(&d, "d", "W_D", 0, "")
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	f.Check(false, "third problem")
	err := f.Err()
	for _, want := range []string{"$W_N", "$W_D", "third problem"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	var out bytes.Buffer
	var s string
	f := New("ingest", "reads the feed", "Examples: ...", func(string) string { return "" }, &out)
	f.String(&s, "url", "WIKIFLOW_SOURCE_URL", "https://x", "feed URL")
	if err := f.Parse([]string{"-h"}); err != ErrHelp {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Usage: wikiflow ingest", "reads the feed", "$WIKIFLOW_SOURCE_URL", "https://x", "Examples"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if f.EnvVars()["url"] != "WIKIFLOW_SOURCE_URL" {
		t.Error(f.EnvVars())
	}
}
