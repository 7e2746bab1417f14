package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/cli"
)

func runArgs(args []string, env map[string]string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestHelpListsEveryCommand(t *testing.T) {
	out, _, err := runArgs([]string{"help"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
	if _, _, err := runArgs([]string{"frobnicate"}, nil); err == nil || !strings.Contains(err.Error(), "unknown command \"frobnicate\"") {
		t.Errorf("unknown command: %v", err)
	}
	if _, _, err := runArgs(nil, nil); err == nil {
		t.Error("no command accepted")
	}
}

func TestEveryCommandHasHelpWithEnvironmentVariables(t *testing.T) {
	for _, c := range commands() {
		if c.name == "version" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := runArgs([]string{c.name, "--help"}, nil)
			if !errors.Is(err, cli.ErrHelp) {
				t.Fatalf("--help: %v", err)
			}
			env := "[$WIKIFLOW_"
			if c.name == "stack" {
				env = "STACK_HOME" // the launcher reads the STACK_* variables of the Taskfile
			}
			if !strings.Contains(stderr, "Usage: wikiflow "+c.name) || !strings.Contains(stderr, env) {
				t.Errorf("help of %s lacks usage or environment variables:\n%s", c.name, stderr)
			}
		})
	}
}

func TestBadConfigurationReportsEveryProblem(t *testing.T) {
	_, _, err := runArgs([]string{"bridge", "--kafka-brokers", "", "--log-level", "loud"},
		map[string]string{"WIKIFLOW_STREAM_MAX_AGE": "forever"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"kafka-brokers", "WIKIFLOW_STREAM_MAX_AGE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, _, err := runArgs([]string{"replay", "--format", "xml", "extra"}, nil); err == nil ||
		!strings.Contains(err.Error(), "format") || !strings.Contains(err.Error(), "unexpected arguments: extra") {
		t.Errorf("replay: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := runArgs([]string{"version"}, nil)
	if err != nil || !strings.HasPrefix(out, "wikiflow ") {
		t.Fatalf("%q %v", out, err)
	}
}
