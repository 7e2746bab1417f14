package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// secret is a password planted in wikiflow's input. Each has its own core, so a
// leak says which one escaped; value adds characters that URLs %-encode.
type secret struct{ name, core string }

func (s secret) value() string { return s.core + "-p@ss:w/rd" }

// forms are the ways the secret could be written out: raw, %-encoded as a query,
// a path and a URL's userinfo, and its core alone (any partial leak).
func (s secret) forms() []string {
	v := s.value()
	return []string{v, url.QueryEscape(v), url.PathEscape(v), strings.TrimPrefix(url.UserPassword("u", v).String(), "u:"), s.core}
}

var (
	kafkaPW   = secret{"Kafka SASL password", "KafkaPw7Q"}
	natsPW    = secret{"NATS password", "NatsPw7Q"}
	natsURLPW = secret{"NATS URL password", "NatsUrlPw7Q"}
	natsToken = secret{"NATS token", "NatsTok7Q"}
	redisURL  = secret{"Redis URL password (%-encoded)", "RedisUrlPw7Q"}
	redisRaw  = secret{"Redis URL password (raw)", "RedisRawPw7Q"}
	redissURL = secret{"rediss URL password", "RedissPw7Q"}
	redisPW   = secret{"Redis password", "RedisFlagPw7Q"}
	stagePW   = secret{"stage-metrics URL password", "StagePw7Q"}
	feedPW    = secret{"feed URL password", "FeedPw7Q"}
	apiURLPW  = secret{"API URL password", "ApiUrlPw7Q"}
	planted   = []secret{kafkaPW, natsPW, natsURLPW, natsToken, redisURL, redisRaw, redissURL, redisPW, stagePW, feedPW, apiURLPW}
)

// withUser returns raw (a URL) with user and the secret's value as userinfo.
func withUser(raw, user string, s secret) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, s.value())
	return u.String()
}

// assertClean fails the test for every planted secret found in text.
func assertClean(t *testing.T, label, text string) {
	t.Helper()
	for _, s := range planted {
		for _, f := range s.forms() {
			if i := strings.Index(text, f); i >= 0 {
				t.Errorf("%s shows the %s (as %q): …%s…", label, s.name, f, text[max(i-100, 0):min(i+len(f)+60, len(text))])
				break
			}
		}
	}
}

// commandFlags maps each environment variable of a command to its flag, read
// from `wikiflow <command> --help`.
func commandFlags(t *testing.T, command string) map[string]string {
	t.Helper()
	_, stderr, _ := runArgs([]string{command, "--help"}, nil)
	envRe := regexp.MustCompile(`\[\$(WIKIFLOW_[A-Z0-9_]+)\]`)
	out := map[string]string{}
	flag := ""
	for _, line := range strings.Split(stderr, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") && strings.HasPrefix(line, "  -") {
			flag = f[0]
		}
		if m := envRe.FindStringSubmatch(line); m != nil && flag != "" {
			out[m[1]] = flag
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s --help lists no environment variable:\n%s", command, stderr)
	}
	return out
}

// asFlags turns the variables of env that command reads into its flags; the
// others are dropped.
func asFlags(t *testing.T, command string, env map[string]string) []string {
	t.Helper()
	flags := commandFlags(t, command)
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		if f, ok := flags[k]; ok {
			args = append(args, f+"="+env[k])
		}
	}
	return args
}

// capture is everything one run of a command put out.
type capture struct {
	label string
	parts map[string]string // stdout, stderr, the error, each page fetched
}

func (c capture) check(t *testing.T) {
	t.Helper()
	for what, text := range c.parts {
		assertClean(t, c.label+" "+what, text)
	}
}

// runOnce runs a command that ends by itself (or after timeout) and captures it.
func runOnce(t *testing.T, label string, args []string, env map[string]string, timeout time.Duration) capture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb syncBuffer
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	c := capture{label: label, parts: map[string]string{"stdout": out.String(), "stderr": errb.String()}}
	if err != nil {
		c.parts["error"] = fmt.Sprintf("%v %+v", err, err)
	}
	return c
}

// runProcess runs `wikiflow <args>` as a process of its own (the test binary
// acting as main) with only env as its environment, for commands that must not
// share the test's process (the dashboard, which owns the terminal).
func runProcess(t *testing.T, label string, args []string, env map[string]string, timeout time.Duration) capture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = []string{envAsMain + "=1", "PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	c := capture{label: label, parts: map[string]string{"stdout": out.String(), "stderr": errb.String()}}
	if err != nil {
		c.parts["error"] = err.Error()
	}
	return c
}

// runServing runs a long-running command for about d, fetches pages from it
// meanwhile (when addr is not empty) and captures everything.
func runServing(t *testing.T, label string, args []string, env map[string]string, addr string, pages []string, d time.Duration) capture {
	t.Helper()
	r := startServing(t, args, env, addr)
	c := capture{label: label, parts: map[string]string{}}
	time.Sleep(d)
	for _, p := range pages {
		code, body := r.get(t, p)
		c.parts[p] = fmt.Sprintf("%d %s", code, body)
	}
	if err := r.stop(); err != nil && !errors.Is(err, context.Canceled) {
		c.parts["error"] = fmt.Sprintf("%v %+v", err, err)
	}
	c.parts["stdout"], c.parts["stderr"] = r.stdout.String(), r.stderr.String()
	return c
}

// stagePages and apiPages are the pages fetched from running commands.
var (
	stagePages = []string{"/healthz", "/readyz", "/metrics"}
	apiPages   = []string{"/healthz", "/readyz", "/metrics", "/stats", "/stats?window=7m", "/stats/top/pages", "/openapi.json", "/no/such/page"}
)

// logFormats alternates text and JSON logs at debug level, the most verbose.
func logFormats(i int) map[string]string {
	format := "text"
	if i%2 == 1 {
		format = "json"
	}
	return map[string]string{"WIKIFLOW_LOG_LEVEL": "debug", "WIKIFLOW_LOG_FORMAT": format}
}

// merge returns the union of maps (later ones win).
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
