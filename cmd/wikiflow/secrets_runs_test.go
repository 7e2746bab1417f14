package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// natsCreds gives NATS credentials three ways: in the URL, user and password,
// token.
func natsCreds(i int, host string) map[string]string {
	switch i % 3 {
	case 0:
		return map[string]string{"WIKIFLOW_NATS_URL": withUser("nats://"+host, "wf2", natsURLPW)}
	case 1:
		return map[string]string{"WIKIFLOW_NATS_URL": "nats://" + host, "WIKIFLOW_NATS_USER": "wf", "WIKIFLOW_NATS_PASSWORD": natsPW.value()}
	default:
		return map[string]string{"WIKIFLOW_NATS_URL": "nats://" + host, "WIKIFLOW_NATS_TOKEN": natsToken.value()}
	}
}

// redisCreds gives Redis credentials four ways: a %-encoded password in a
// redis:// URL, in a rediss:// URL without user, a raw password in the URL, and
// user and password settings.
func redisCreds(i int, host string) map[string]string {
	switch i % 4 {
	case 0:
		return map[string]string{"WIKIFLOW_REDIS_URL": withUser("redis://"+host+"/0", "alice", redisURL)}
	case 1:
		return map[string]string{"WIKIFLOW_REDIS_URL": withUser("rediss://"+host+"/0", "", redissURL)}
	case 2:
		return map[string]string{"WIKIFLOW_REDIS_URL": "redis://alice:" + redisRaw.core + "@" + host + "/0"}
	default:
		return map[string]string{"WIKIFLOW_REDIS_URL": "redis://" + host + "/0", "WIKIFLOW_REDIS_USER": "default", "WIKIFLOW_REDIS_PASSWORD": redisPW.value()}
	}
}

// kafkaCreds sets SCRAM credentials for the brokers at addr.
func kafkaCreds(addr, user string) map[string]string {
	return map[string]string{"WIKIFLOW_KAFKA_BROKERS": addr, "WIKIFLOW_KAFKA_SASL": "SCRAM-SHA-512",
		"WIKIFLOW_KAFKA_USER": user, "WIKIFLOW_KAFKA_PASSWORD": kafkaPW.value()}
}

// everySecret plants every secret of variant i, with every dependency at host
// (a closed port unless the caller says otherwise).
func everySecret(t *testing.T, i int, host string) map[string]string {
	return merge(kafkaCreds(host, "wf-user"), natsCreds(i, host), redisCreds(i, host), map[string]string{
		"WIKIFLOW_SOURCE_URL":     withUser("http://"+host+"/v2/stream/recentchange", "reader", feedPW),
		"WIKIFLOW_STAGE_METRICS":  withUser("http://"+host+"/metrics", "scraper", stagePW) + ",http://127.0.0.1:2/metrics",
		"WIKIFLOW_API_URL":        withUser("http://"+host, "viewer", apiURLPW),
		"WIKIFLOW_TUI_LOG_FILE":   filepath.Join(t.TempDir(), "tui.log"),
		"WIKIFLOW_GEN_COUNT":      "5",
		"WIKIFLOW_GEN_TRUTH_FILE": filepath.Join(t.TempDir(), "truth.json"),
	})
}

func TestSecretsStayOutOfHelp(t *testing.T) {
	for i, c := range commands() {
		if c.name == "version" || c.name == "stack" { // stack reads only STACK_*, no secret
			continue
		}
		env := everySecret(t, i, "127.0.0.1:1")
		runs := map[string][]string{"environment": {c.name, "--help"}, "flags": append(append([]string{c.name}, asFlags(t, c.name, env)...), "--help")}
		for how, args := range runs {
			stdout, stderr, err := runArgs(args, map[string]string{})
			if how == "environment" {
				stdout, stderr, err = runArgs(args, env)
			}
			c := capture{label: c.name + " --help (secrets in the " + how + ")", parts: map[string]string{"stdout": stdout, "stderr": stderr}}
			if err != nil {
				c.parts["error"] = err.Error()
			}
			c.check(t)
		}
	}
}

// runWithSecrets runs command with env, given as environment variables when
// asEnv is set and as flags otherwise, the way the command runs (serving pages,
// or until it ends), and checks everything it put out.
func runWithSecrets(t *testing.T, label, command string, env map[string]string, asEnv bool) {
	t.Helper()
	how, tuiLog := "flags", env["WIKIFLOW_TUI_LOG_FILE"]
	if asEnv {
		how = "environment"
	}
	label = command + " " + label + " (" + how + ", " + env["WIKIFLOW_LOG_FORMAT"] + " logs)"
	args := append([]string{command}, flagsUnless(t, asEnv, command, env)...)
	env = envIf(asEnv, env)
	var c capture
	switch command {
	case "ingest", "bridge", "aggregate":
		c = runServing(t, label, args, env, servedAt(env, args, "WIKIFLOW_HEALTH_ADDR"), stagePages, 700*time.Millisecond)
	case "api":
		c = runServing(t, label, args, env, servedAt(env, args, "WIKIFLOW_API_ADDR"), apiPages, 700*time.Millisecond)
	case "emulator":
		c = runServing(t, label, args, env, "", nil, 500*time.Millisecond)
	case "tui":
		if f, err := os.Open("/dev/tty"); err == nil {
			f.Close()
			t.Logf("%s: not run, a terminal is attached (the dashboard would take it over)", label)
			return
		}
		c = runProcess(t, label, args, env, 5*time.Second)
		if b, err := os.ReadFile(tuiLog); err == nil {
			c.parts["log file"] = string(b)
		}
	default:
		c = runOnce(t, label, args, env, 4*time.Second)
	}
	c.check(t)
}

// servedAt returns the address a command serves on: the value of key, given in
// env or as the matching flag of args.
func servedAt(env map[string]string, args []string, key string) string {
	if v := env[key]; v != "" {
		return v
	}
	for _, a := range args {
		for _, flag := range []string{"--health-addr=", "--addr=", "-health-addr=", "-addr="} {
			if len(a) > len(flag) && a[:len(flag)] == flag {
				return a[len(flag):]
			}
		}
	}
	return ""
}

// TestSecretsStayOutOfRunsAgainstUnreachableBrokers runs every command with
// every secret planted, four ways each, against closed ports.
func TestSecretsStayOutOfRunsAgainstUnreachableBrokers(t *testing.T) {
	for _, c := range commands() {
		if c.name == "version" || c.name == "stack" { // stack reads only STACK_*, no secret
			continue
		}
		for i := 0; i < 4; i++ {
			env := merge(everySecret(t, i, "127.0.0.1:1"), logFormats((i+i/2)%2), map[string]string{
				"WIKIFLOW_HEALTH_ADDR": freeAddr(t), "WIKIFLOW_API_ADDR": freeAddr(t), "WIKIFLOW_EMULATOR_ADDR": freeAddr(t),
			})
			runWithSecrets(t, "unreachable", c.name, env, i%2 == 0)
		}
	}
}

// TestSecretsStayOutOfBadConfiguration gives URLs with credentials that do not
// parse: the errors must not quote them.
func TestSecretsStayOutOfBadConfiguration(t *testing.T) {
	bad := map[string]string{
		"WIKIFLOW_REDIS_URL":     "redis://alice:" + redisRaw.core + "@127.0.0.1:notaport/0",
		"WIKIFLOW_NATS_URL":      "nats://wf2:" + natsURLPW.core + "@127.0.0.1:notaport",
		"WIKIFLOW_SOURCE_URL":    "http://reader:" + feedPW.core + "@127.0.0.1:notaport/x",
		"WIKIFLOW_STAGE_METRICS": "http://scraper:" + stagePW.core + "@[::1/metrics",
		"WIKIFLOW_API_URL":       "http://viewer:" + apiURLPW.core + "@127.0.0.1:notaport",
		"WIKIFLOW_KAFKA_SASL":    "GSSAPI", "WIKIFLOW_KAFKA_USER": "wf", "WIKIFLOW_KAFKA_PASSWORD": kafkaPW.value(),
		"WIKIFLOW_TUI_LOG_FILE": filepath.Join(t.TempDir(), "tui.log"),
	}
	for i, c := range commands() {
		if c.name == "version" || c.name == "stack" { // stack reads only STACK_*, no secret
			continue
		}
		env := merge(bad, logFormats(i), map[string]string{"WIKIFLOW_API_ADDR": freeAddr(t), "WIKIFLOW_EMULATOR_ADDR": freeAddr(t)})
		for _, asEnv := range []bool{true, false} {
			cp := runOnce(t, "with unparsable URLs", append([]string{c.name}, flagsUnless(t, asEnv, c.name, env)...), envIf(asEnv, env), 1500*time.Millisecond)
			cp.label = c.name + " " + cp.label
			cp.check(t)
		}
	}
}

func flagsUnless(t *testing.T, asEnv bool, command string, env map[string]string) []string {
	if asEnv {
		return nil
	}
	return asFlags(t, command, env)
}

func envIf(asEnv bool, env map[string]string) map[string]string {
	if asEnv {
		return env
	}
	return map[string]string{}
}
