package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// startBroker prepares and launches one broker unless it runs already.
func (s *Stack) startBroker(ctx context.Context, name string) error {
	if s.alreadyRunning(name) {
		return nil
	}
	var err error
	switch kind, i := node(name); kind {
	case "kafka":
		err = s.KafkaNode(i).Prepare(ctx, s.Out)
	case "nats":
		if err = EnsureNATSServer(ctx, s.Root, s.NATSServer, s.Out); err == nil {
			err = s.NATSNode(i).Prepare()
		}
	case "redis":
		err = s.RedisNode(i).Prepare()
	}
	if err != nil {
		return err
	}
	args, err := s.Args(name)
	if err != nil {
		return err
	}
	return s.launch(name, args)
}

// Infra starts the brokers (Redis, NATS, Kafka) and waits until they are
// healthy; what they need and is missing is installed first (see [Prereqs]).
func (s *Stack) Infra(ctx context.Context) error {
	start := time.Now()
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.infra(ctx); err != nil {
		return err
	}
	s.say("brokers ready in %s: Kafka %s, NATS %s, Redis %s", seconds(time.Since(start)),
		s.KafkaAddrs(), s.NATSURLs(), s.RedisURLs())
	return nil
}

func (s *Stack) infra(ctx context.Context) error {
	for _, d := range []string{s.RunDir(), s.DataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("stack folder: %w", err)
		}
	}
	if err := EnsureTools(ctx, LocalHost(), s.BrokerTools(), s.Out); err != nil {
		return err
	}
	names := s.BrokerNames()
	for i := len(names) - 1; i >= 0; i-- { // Redis, NATS, then Kafka
		if err := s.startBroker(ctx, names[i]); err != nil {
			return err
		}
	}
	if err := s.waitHealthy(ctx, names...); err != nil {
		return err
	}
	if s.Clustered() {
		return s.FormRedisCluster(ctx)
	}
	return nil
}

// BrokerTools are the programs the native brokers need: redis-server, Java and,
// while the Kafka jars are not cached, Maven.
func (s *Stack) BrokerTools() []Tool {
	tools := []Tool{ToolRedis, ToolJava}
	if !s.Kafka().LibsCached() {
		tools = append(tools, ToolMaven)
	}
	return tools
}

// ensureWikiflow builds cmd/wikiflow into Wikiflow (cheap when nothing changed:
// Go caches it) unless WIKIFLOW_BIN names a binary or Wikiflow is the running
// program itself.
func (s *Stack) ensureWikiflow(ctx context.Context) error {
	if s.WikiflowGiven {
		if st, err := os.Stat(s.Wikiflow); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("WIKIFLOW_BIN=%s is not an executable", s.Wikiflow)
		}
		return nil
	}
	if self, err := os.Executable(); err == nil && sameFile(self, s.Wikiflow) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(s.Root, "cmd", "wikiflow")); err != nil {
		return fmt.Errorf("%s/cmd/wikiflow does not exist", s.Root)
	}
	if err := os.MkdirAll(filepath.Dir(s.Wikiflow), 0o755); err != nil {
		return fmt.Errorf("bin folder: %w", err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", s.Wikiflow, "./cmd/wikiflow")
	build.Dir, build.Stdout, build.Stderr = s.Root, s.Out, s.Err
	if err := build.Run(); err != nil {
		return fmt.Errorf("building wikiflow failed: %w", err)
	}
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// StartService starts one pipeline stage unless it runs already.
func (s *Stack) StartService(name string) error {
	if s.alreadyRunning(name) {
		return nil
	}
	args, err := s.ServiceArgs(name)
	if err != nil {
		return err
	}
	return s.launch(name, args)
}

// Up starts the brokers, then the stages one by one (the emulator first with
// SOURCE=sample), each once the one before is healthy, and says where to look.
func (s *Stack) Up(ctx context.Context) error {
	start := time.Now()
	url, err := s.SourceURL()
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.infra(ctx); err != nil {
		return err
	}
	if err := s.ensureWikiflow(ctx); err != nil {
		return err
	}
	services := s.ServiceNames()
	if s.Source != "sample" {
		services = services[1:]
	}
	for _, name := range services {
		if err := s.StartService(name); err != nil {
			return err
		}
		if err := s.waitHealthy(ctx, name); err != nil {
			return err
		}
	}
	s.say("\n%s", s.headline(s.FeedState(ctx), url, time.Since(start)))
	s.say(`  web page:      http://127.0.0.1:%[1]d/
  dashboard:     go tool task dash
  counts:        curl -s localhost:%[1]d/stats
  history:       go tool task replay -- --since 10m
  status, logs:  go tool task status / go tool task logs
  stop:          go tool task down   (data is kept; go tool task clean removes it)`, s.Ports.API)
	return nil
}

// headline is the first line up prints: how long it took and, when ingest has
// published nothing yet, what is wrong with the feed.
func (s *Stack) headline(feed, url string, took time.Duration) string {
	switch {
	case feed == "":
		return fmt.Sprintf("wikiflow is up in %s (source: %s).", seconds(took), url)
	case strings.HasPrefix(feed, "feed unreachable:"):
		return fmt.Sprintf("wikiflow is up in %s, but the feed is unreachable: offline? SOURCE=sample (go tool task up SOURCE=sample)\n  ingest: %s", seconds(took), feed)
	case feed == "silent":
		return fmt.Sprintf("wikiflow is up in %s (source: %s).\n  The feed has sent no event yet after %s: see go tool task status and go tool task logs -- ingest",
			seconds(took), url, s.FeedWait)
	default:
		return fmt.Sprintf("wikiflow is up in %s (source: %s).\n  ingest is degraded: %s", seconds(took), url, feed)
	}
}

// Down stops the stages (ingest and the emulator first), then the brokers, and
// fails when a process of the stack is left running.
func (s *Stack) Down(ctx context.Context) error {
	start := time.Now()
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s.stop("ingest", "emulator")
	s.stop("bridge")
	var aggregates []string
	for _, name := range s.ServiceNames() {
		if kind, _ := node(name); kind == "aggregate" {
			aggregates = append(aggregates, name)
		}
	}
	s.stop(aggregates...)
	s.stop("api")
	s.stop(s.BrokerNames()...)
	if left := s.Leftovers(); len(left) > 0 {
		s.warn("still running after down:")
		fmt.Fprintln(s.Err, strings.Join(left, "\n"))
		return errors.New("down left processes behind")
	}
	s.say("down in %s: no wikiflow process is left running", seconds(time.Since(start)))
	return nil
}

// Clean runs Down, then removes the run and data folders (the Kafka jars stay).
func (s *Stack) Clean(ctx context.Context) error {
	if err := s.Down(ctx); err != nil {
		return err
	}
	if err := errors.Join(os.RemoveAll(s.RunDir()), os.RemoveAll(s.DataDir())); err != nil {
		return fmt.Errorf("clean: %w", err)
	}
	s.say("removed %s and %s (the Kafka jars stay cached in %s)", s.RunDir(), s.DataDir(), s.KafkaLibs)
	return nil
}

// Status writes a table of every component: pid, state, ports and health (with
// a stage's degraded reason, or the other process holding a stopped one's port).
func (s *Stack) Status(ctx context.Context, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tSTATE\tPORTS\tHEALTH")
	for _, name := range s.ComponentNames() {
		pid, state, health := "-", "stopped", "-"
		if p, ok := s.RunningPid(name); ok {
			pid, state, health = fmt.Sprint(p), "running", "unhealthy"
			if s.healthy(ctx, name) {
				health = "ok"
				if kind, _ := node(name); kind == "ingest" || kind == "bridge" || kind == "aggregate" {
					if r := DegradedReason(ctx, s.PortsOf(name)[0]); r != "" {
						health = "degraded: " + r
					}
				}
			}
		} else {
			var busy []int
			for _, p := range s.PortsOf(name) {
				if PortOpen(p) {
					busy = append(busy, p)
				}
			}
			if len(busy) > 0 {
				health = fmt.Sprintf("port %s in use by another process", strings.ReplaceAll(joinPorts(busy), ",", " "))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, pid, state, joinPorts(s.PortsOf(name)), health)
	}
	return tw.Flush()
}

// Logs shows the last LogLines lines of the named components' logs (every
// component's when none is named), following them when follow is set.
func (s *Stack) Logs(ctx context.Context, follow bool, names ...string) error {
	if len(names) == 0 {
		names = s.ComponentNames()
	}
	var files []string
	for _, name := range names {
		if !s.known(name) {
			return fmt.Errorf("unknown component %q (known: %s)", name, strings.Join(s.ComponentNames(), " "))
		}
		if _, err := os.Stat(s.LogFile(name)); err == nil {
			files = append(files, s.LogFile(name))
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("no logs yet in %s", s.RunDir())
	}
	args := []string{"-n", fmt.Sprint(s.LogLines)}
	if follow || s.LogsFollow {
		args = append(args, "-F")
	}
	tail := exec.CommandContext(ctx, "tail", append(args, files...)...)
	tail.Stdout, tail.Stderr = s.Out, s.Err
	if err := tail.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("tail: %w", err)
	}
	return nil
}
