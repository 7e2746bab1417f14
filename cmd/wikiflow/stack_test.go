package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

func TestStackHelpTeachesEveryCommandAndPort(t *testing.T) {
	_, stderr, err := runArgs([]string{"stack", "up", "--help"}, nil)
	if !errors.Is(err, cli.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, c := range stackCommands {
		if !strings.Contains(stderr, "\n  "+c+" ") {
			t.Errorf("help does not explain %s", c)
		}
	}
	for k, v := range stack.DefaultPorts().ByEnv() {
		if !regexp.MustCompile(k + `\s+` + fmt.Sprint(v) + `\n`).MatchString(stderr) {
			t.Errorf("help does not give %s's default %d", k, v)
		}
	}
	for _, v := range []string{"STACK_TIMEOUT", "STACK_FEED_WAIT", "STACK_NATS_SYNC_INTERVAL", "STACK_KAFKA_JVM_OPTS", "WIKIFLOW_BIN", "SOURCE", "LOGS_LINES"} {
		if !strings.Contains(stderr, v) {
			t.Errorf("help does not explain %s", v)
		}
	}
}

func TestStackRefusesWhatItDoesNotKnow(t *testing.T) {
	cases := map[string][]string{
		`unknown command "start"`:           {"stack", "start"},
		`unexpected argument "--fast"`:      {"stack", "up", "--fast"},
		"no command given":                  {"stack"},
		`SOURCE must be live, sample or an`: {"stack", "status"},
	}
	for want, args := range cases {
		env := map[string]string{"HOME": t.TempDir()}
		if args[len(args)-1] == "status" {
			env["SOURCE"] = "gopher://x"
		}
		_, _, err := runArgs(args, env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
}

// TestStackStatusAndDownOfAnEmptyStack runs status and down on a stack that has
// never run: everything is stopped, and down finds nothing left.
func TestStackStatusAndDownOfAnEmptyStack(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir(), "STACK_HOME": t.TempDir()}
	for k := range stack.DefaultPorts().ByEnv() {
		env[k] = fmt.Sprint(testenv.FreePort(t))
	}
	out, _, err := runArgs([]string{"stack", "status"}, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range stack.Components() {
		if !regexp.MustCompile(`(?m)^` + name + `\s+-\s+stopped\s+[0-9,]+\s+-$`).MatchString(out) {
			t.Errorf("status has no stopped %s row:\n%s", name, out)
		}
	}
	out, _, err = runArgs([]string{"stack", "down"}, env)
	if err != nil || !strings.Contains(out, "no wikiflow process is left running") {
		t.Errorf("down: %v\n%s", err, out)
	}
}

func TestStackPrereqsDryRunSaysWhatItWouldDo(t *testing.T) {
	out, _, err := runArgs([]string{"stack", "prereqs", "--test-tools", "--dry-run"}, map[string]string{"HOME": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "nothing is missing") && !strings.Contains(out, "missing: ") {
		t.Errorf("dry run says neither what is missing nor that nothing is:\n%s", out)
	}
}
