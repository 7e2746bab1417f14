package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// pipeline is a whole pipeline started with every secret in use: the feed
// behind a URL with credentials, NATS and Redis that require passwords, an API
// scraping the stages through URLs with credentials.
type pipeline struct {
	natsHost, redisHost, apiAddr string
	stages                       map[string]*running
	labels                       map[string]string
	want                         int64
}

func startSecretPipeline(t *testing.T) *pipeline {
	kafkaAddr := testenv.KafkaAddr(t)
	p := &pipeline{
		natsHost:  natsWithUsers(t, map[string]string{"wf": natsPW.value(), "wf2": natsURLPW.value()}),
		redisHost: redisWithPasswords(t, redisPW.value(), redisURL.value(), redisRaw.core),
		apiAddr:   freeAddr(t), stages: map[string]*running{}, labels: map[string]string{},
	}
	events := recordedFeed(t, 0)[:300]
	seen := map[string]bool{}
	for _, e := range events {
		if !e.canary && !seen[e.metaID] {
			seen[e.metaID] = true
			p.want++
		}
	}
	feed := serveFeed(t, events)
	health := map[string]string{"ingest": freeAddr(t), "bridge": freeAddr(t), "aggregate": freeAddr(t)}
	kafka := map[string]string{"WIKIFLOW_KAFKA_BROKERS": kafkaAddr, "WIKIFLOW_KAFKA_TOPIC": testenv.Topic(t, kafkaAddr, 3)}
	var scrape string
	for _, s := range []string{"ingest", "bridge", "aggregate"} {
		if scrape != "" {
			scrape += ","
		}
		scrape += withUser("http://"+health[s]+"/metrics", "scraper", stagePW)
	}
	envs := map[string]map[string]string{
		"ingest": merge(kafka, logFormats(1), map[string]string{
			"WIKIFLOW_SOURCE_URL":        withUser(feed.URL+"/v2/stream/recentchange", "reader", feedPW),
			"WIKIFLOW_DEAD_LETTER_TOPIC": testenv.Topic(t, kafkaAddr, 1),
		}),
		"bridge":    merge(kafka, logFormats(0), natsCreds(1, p.natsHost)),
		"aggregate": merge(logFormats(1), natsCreds(0, p.natsHost), redisCreds(0, p.redisHost)),
		"api":       merge(logFormats(0), redisCreds(3, p.redisHost), map[string]string{"WIKIFLOW_STAGE_METRICS": scrape, "WIKIFLOW_API_ADDR": p.apiAddr}),
	}
	for i, s := range []string{"ingest", "bridge", "aggregate", "api"} {
		asEnv := i%2 == 0
		addr := p.apiAddr
		if s != "api" {
			addr = health[s]
			envs[s]["WIKIFLOW_HEALTH_ADDR"] = addr
		}
		p.labels[s] = s + " on real brokers (" + map[bool]string{true: "environment", false: "flags"}[asEnv] + ")"
		p.stages[s] = startServing(t, append([]string{s}, flagsUnless(t, asEnv, s, envs[s])...), envIf(asEnv, envs[s]), addr)
	}
	return p
}

// waitCounted waits until the API counts every distinct event of the feed.
func (p *pipeline) waitCounted(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		_, body := p.stages["api"].get(t, "/stats")
		last = body
		var s struct{ Total int64 }
		if json.Unmarshal(body, &s) == nil && s.Total >= p.want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the API does not count %d events after 90 s: %s\naggregate: %s", p.want, last, p.stages["aggregate"].stderr.String())
}

// readStream reads /stats/stream of the API for d.
func readStream(t *testing.T, addr string, d time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats/stream?interval=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + "\n" + string(b)
}

func TestSecretsStayOutOfARealPipeline(t *testing.T) {
	p := startSecretPipeline(t)
	p.waitCounted(t)
	var caps []capture
	for s, r := range p.stages {
		c := capture{label: p.labels[s], parts: map[string]string{}}
		pages := stagePages
		if s == "api" {
			pages = apiPages
			c.parts["/stats/stream"] = readStream(t, p.apiAddr, 2500*time.Millisecond)
		}
		for _, pg := range pages {
			code, body := r.get(t, pg)
			c.parts[pg] = strconv.Itoa(code) + " " + string(body)
		}
		caps = append(caps, c)
	}
	tools := []struct {
		command string
		env     map[string]string
		asEnv   bool
	}{
		{"replay", natsCreds(1, p.natsHost), true},
		{"replay", natsCreds(0, p.natsHost), false},
		{"status", merge(natsCreds(0, p.natsHost), redisCreds(2, p.redisHost)), true},
		{"status", merge(natsCreds(1, p.natsHost), redisCreds(3, p.redisHost)), false},
		{"rebuild", merge(natsCreds(1, p.natsHost), redisCreds(0, p.redisHost)), true},
	}
	for i, tl := range tools {
		env := merge(logFormats(i), tl.env)
		args := append([]string{tl.command}, flagsUnless(t, tl.asEnv, tl.command, env)...)
		if tl.command == "rebuild" {
			args = append(args, "--switch=false")
		}
		caps = append(caps, runOnce(t, tl.command+" on real brokers", args, envIf(tl.asEnv, env), 60*time.Second))
	}
	tuiEnv := map[string]string{"WIKIFLOW_API_URL": withUser("http://"+p.apiAddr, "viewer", apiURLPW), "WIKIFLOW_TUI_LOG_FILE": filepath.Join(t.TempDir(), "tui.log")}
	runWithSecrets(t, "against the real API", "tui", merge(logFormats(1), tuiEnv), true)
	for s, r := range p.stages {
		err := r.stop()
		c := capture{label: p.labels[s], parts: map[string]string{"stdout": r.stdout.String(), "stderr": r.stderr.String()}}
		if err != nil {
			c.parts["error"] = err.Error()
		}
		caps = append(caps, c)
	}
	for _, c := range caps {
		c.check(t)
	}
}

// stackKafkaSASL is the SCRAM-SHA-512 listener of the project's native Kafka
// (stack/kafka/server.properties).
const stackKafkaSASL = "127.0.0.1:9094"

// TestSecretsStayOutOfRefusedLogins runs the commands against real brokers that
// refuse the planted credentials: Kafka's SASL listener, and NATS and Redis
// servers that expect other passwords.
func TestSecretsStayOutOfRefusedLogins(t *testing.T) {
	testenv.KafkaAddr(t)
	if c, err := net.DialTimeout("tcp", stackKafkaSASL, 3*time.Second); err != nil {
		msg := "the stack's Kafka SASL listener " + stackKafkaSASL + " is not reachable (" + err.Error() + "): restart the brokers with `go tool task down infra`"
		if testenv.InCI() {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	} else {
		c.Close()
	}
	natsHost := natsWithUsers(t, map[string]string{"wf": "not-the-planted-one", "wf2": "nor-this"})
	redisHost := redisWithPasswords(t, "not-the-planted-one", "nor-this")
	for i, command := range []string{"ingest", "bridge", "gen", "aggregate", "api", "replay", "status", "rebuild"} {
		for v := 0; v < 2; v++ {
			env := merge(kafkaCreds(stackKafkaSASL, "wf-no-such-user"), natsCreds(i+v, natsHost), redisCreds(i+v, redisHost),
				logFormats(v), map[string]string{"WIKIFLOW_HEALTH_ADDR": freeAddr(t), "WIKIFLOW_API_ADDR": freeAddr(t), "WIKIFLOW_GEN_COUNT": "5",
					"WIKIFLOW_GEN_TRUTH_FILE": filepath.Join(t.TempDir(), "truth.json"),
					"WIKIFLOW_STAGE_METRICS":  withUser("http://127.0.0.1:1/metrics", "scraper", stagePW)})
			runWithSecrets(t, "with refused credentials", command, env, v == 0)
		}
	}
}
