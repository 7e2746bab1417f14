package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/stack"
)

const stackUsage = `Usage: wikiflow stack <command> [arguments]

Runs the whole pipeline on this machine: natively by default (a Kafka JVM,
nats-server and redis-server as plain processes, no containers), or with docker
compose when STACK=docker. The tasks 'go tool task up|down|status|logs|clean|infra'
call these commands.

Commands:
  infra            start the brokers only: Kafka, NATS JetStream, Redis (what the tests use)
  up               brokers + the stages (emulator, ingest, bridge, aggregate, api), each
                   once the one before is healthy; SOURCE=live|sample|<url> picks the feed
  down             stop the stages, then the brokers; fail if a process is left (data is kept)
  status           a table of every component: pid, state, ports, health (and why degraded)
  logs [-f] [c..]  the last lines of every log, or of the named components; -f follows
  clean            down, then remove the run and data folders (the Kafka jars stay cached)
  prereqs          install redis-server, Java 17+ and Maven when missing (up and infra do it
                   too); --test-tools adds jq, promtool (prometheus), chromium, kcat and the
                   pinned Python clients (tools/python/requirements.txt), which the tests
                   check wikiflow against; --bench-tools adds wrk; --dry-run only says what
                   it would install

What is missing is installed with apt-get when running as root or with password-less
sudo, or with Homebrew on macOS; each install says what and why. Where that is not
possible the command stops with the exact command to run.

Everything lives in one folder, STACK_HOME (default <repo>/.wikiflow):
  run/   pid files and logs (<component>.log, the previous run's as .log.1)
  data/  Kafka, NATS and Redis data (kept by down, removed by clean)
  bin/   nats-server (built from tools/go.mod) and wikiflow
The Kafka ` + stack.KafkaVersion + ` jars are fetched once with Maven (stack/kafka/pom.xml) into
${XDG_CACHE_HOME:-$HOME/.cache}/wikiflow/kafka-` + stack.KafkaVersion + `/libs.

Every start is idempotent: a component that runs already is left alone, a stale pid
file is removed, and a port held by another process is an error naming that process.
Each process runs in its own session, so it never holds this command's output open.

Environment:
  STACK                     native (default) or docker (compose/docker-compose.yml)
  SOURCE                    live (default: Wikimedia's EventStreams), sample (the bundled
                            recording, served by 'wikiflow emulator') or an http(s) URL
  STACK_HOME                the stack's folder (default <repo>/.wikiflow)
  TOPOLOGY                  single (default: one node of each broker) or cluster (native
                            only): 3 Kafka nodes in KRaft (broker+controller, RF 3,
                            min.insync 2, a 64-256 MB heap each), 3 nats-servers n1-n3 in
                            one JetStream cluster, a Redis Cluster of 3 masters + 3
                            replicas, and aggregate1-3 as shards 0-2 of 3; the topic gets
                            6 partitions, the stream 3 replicas
  STACK_CLUSTER_BASE_PORT   first port B of TOPOLOGY=cluster (default 7000): Kafka node i
                            on B+3(i-1) (client, controller, SASL), nats-server i on
                            B+10+i-1 (client), B+13+i-1 (route), B+16+i-1 (monitor),
                            Redis node 1-6 on B+20..B+25 (bus: +10000), aggregate shard
                            health on B+30..B+32; the other stages keep STACK_<NAME>_PORT
  STACK_TIMEOUT             seconds to wait for a component to become healthy (default 120)
  STACK_FEED_WAIT           seconds up waits for ingest's first event before it says the
                            feed is silent, unreachable or stuck (default 15)
  STACK_NATS_SYNC_INTERVAL  JetStream's fsync: always (default: on disk before it is
                            acknowledged) or a duration such as 1s (an OS crash loses up
                            to that much; nats-server's own default is 2m)
  STACK_KAFKA_JVM_OPTS      Kafka's JVM options (default: a 128-384 MB heap, the serial
                            collector and the C1 compiler only, which halves the start)
  WIKIFLOW_BIN              the wikiflow binary the stages run (default: this binary when
                            it is <STACK_HOME>/bin/wikiflow, else built from cmd/wikiflow)
  STACK_<NAME>_PORT         ports, for development (two stacks on one machine): the
                            defaults are the ones every wikiflow command and compose/ assume:
%s  LOGS_LINES                lines logs shows (default 50); LOGS_FOLLOW=1 is logs -f

Examples:
  wikiflow stack up                               # the live feed
  SOURCE=sample wikiflow stack up                 # offline, the bundled recording
  TOPOLOGY=cluster SOURCE=sample wikiflow stack up # every broker as a 3-node cluster
  wikiflow stack logs -f ingest
  STACK_HOME=/tmp/wf2 STACK_KAFKA_PORT=19092 ... wikiflow stack infra
`

// stackCommands are the subcommands of wikiflow stack.
var stackCommands = []string{"infra", "up", "down", "status", "logs", "clean", "prereqs"}

func printStackUsage(w io.Writer) {
	var ports strings.Builder
	def := stack.DefaultPorts().ByEnv()
	names := make([]string, 0, len(def))
	for k := range def {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return def[a] - def[b] })
	for _, k := range names {
		fmt.Fprintf(&ports, "                              %-28s %d\n", k, def[k])
	}
	fmt.Fprintf(w, stackUsage, ports.String())
}

func runStack(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 || slices.Contains(args, "-h") || slices.Contains(args, "--help") || args[0] == "help" {
		printStackUsage(stderr)
		if len(args) == 0 {
			return fmt.Errorf("stack: no command given (one of %s)", strings.Join(stackCommands, ", "))
		}
		return cli.ErrHelp
	}
	name, rest := args[0], args[1:]
	if !slices.Contains(stackCommands, name) {
		return fmt.Errorf("stack: unknown command %q (one of %s; see wikiflow stack --help)", name, strings.Join(stackCommands, ", "))
	}
	root, err := stack.FindRoot("")
	if err != nil && name != "prereqs" {
		return fmt.Errorf("stack: run it inside the repository: %w", err)
	}
	cfg, err := stack.FromEnv(root, getenv)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	s := &stack.Stack{Config: cfg, Out: stdout, Err: stderr}
	if err := stackCommand(ctx, s, name, rest); err != nil {
		return fmt.Errorf("stack %s: %w", name, err)
	}
	return nil
}

func stackCommand(ctx context.Context, s *stack.Stack, name string, args []string) error {
	follow, testTools, benchTools, dryRun := false, false, false, false
	var names []string
	for _, a := range args {
		switch {
		case name == "logs" && (a == "-f" || a == "--follow" || a == "follow"):
			follow = true
		case name == "logs":
			names = append(names, a)
		case name == "prereqs" && a == "--test-tools":
			testTools = true
		case name == "prereqs" && a == "--bench-tools":
			benchTools = true
		case name == "prereqs" && a == "--dry-run":
			dryRun = true
		default:
			return fmt.Errorf("unexpected argument %q (see wikiflow stack --help)", a)
		}
	}
	if name == "prereqs" {
		return prereqs(ctx, s, testTools, benchTools, dryRun)
	}
	if s.Mode == "docker" {
		return stack.Docker{Stack: s}.Run(ctx, name, follow, names...)
	}
	switch name {
	case "infra":
		return s.Infra(ctx)
	case "up":
		return s.Up(ctx)
	case "down":
		return s.Down(ctx)
	case "status":
		return s.Status(ctx, s.Out)
	case "logs":
		return s.Logs(ctx, follow, names...)
	default:
		return s.Clean(ctx)
	}
}

// prereqs installs what the brokers (and with testTools the tests, with
// benchTools the benchmark) need, then prints the version of each tool; dryRun
// prints only what it would run.
func prereqs(ctx context.Context, s *stack.Stack, testTools, benchTools, dryRun bool) error {
	tools := []stack.Tool{stack.ToolRedis, stack.ToolJava, stack.ToolMaven}
	if testTools {
		tools = append(tools, stack.TestTools...)
	}
	if benchTools {
		tools = append(tools, stack.BenchTools...)
	}
	if dryRun {
		p := stack.PlanFor(stack.LocalHost(), tools)
		if len(p.Missing) == 0 {
			fmt.Fprintln(s.Out, "nothing is missing")
		}
		for _, t := range p.Missing {
			fmt.Fprintf(s.Out, "missing: %s (%s)\n", t.Command, t.Why)
		}
		for _, c := range append([][]string{p.Refresh}, p.Commands...) {
			if len(c) == 0 {
				continue
			}
			fmt.Fprintf(s.Out, "would run: %s\n", strings.Join(c, " "))
		}
		if p.Manual != "" {
			fmt.Fprintf(s.Out, "cannot install from here; run: %s\n", p.Manual)
		}
		return nil
	}
	if err := stack.EnsureTools(ctx, stack.LocalHost(), tools, s.Out); err != nil {
		return err
	}
	if testTools {
		if err := stack.EnsurePython(ctx, s.Root, s.Out); err != nil {
			return err
		}
	}
	version := map[string][]string{"java": {"-version"}, "mvn": {"-B", "-v", "-Dstyle.color=never"}, "redis-server": {"--version"},
		"jq": {"--version"}, "promtool": {"--version"}, "chromium": {"--version"}, "kcat": {"-V"}, "wrk": {"--version"}}
	for _, t := range append([]stack.Tool{{Command: "go"}}, tools...) {
		args, ok := version[t.Command]
		if !ok {
			args = []string{"version"}
		}
		out, _ := exec.CommandContext(ctx, t.Command, args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		line := lines[0]
		if t.Command == "chromium" { // its wrapper script may warn first
			line = lines[len(lines)-1]
		}
		fmt.Fprintf(s.Out, "%-13s %s\n", t.Command+":", line)
	}
	return nil
}
