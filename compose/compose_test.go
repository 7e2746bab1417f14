package compose

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Paths are relative to this package's folder, where go test runs.
const (
	composePath  = "docker-compose.yml"
	pomPath      = "../stack/kafka/pom.xml"
	toolsModPath = "../tools/go.mod"
	dockerfile   = "../Dockerfile"
	dockerignore = "../.dockerignore"
	goModPath    = "../go.mod"
)

// envSourceDirs are the folders whose Go sources define the binary's flags and
// their environment variables.
var envSourceDirs = []string{"../cmd", "../internal", "../lab/emulator", "../lab/gen", "../ingest", "../bridge", "../aggregate", "../api", "../tui", "../replay"}

// file is the part of the compose project the tests read, as the loader
// normalised it (see fromProject).
type file struct {
	Name     string
	Services map[string]service
	Volumes  map[string]any
}

type service struct {
	Image       string
	Build       *build
	Command     []string
	Environment map[string]string
	Ports       []string
	Profiles    []string
	DependsOn   map[string]dependency
	Healthcheck *healthcheck
	Volumes     []string
}

type build struct {
	Context    string
	Dockerfile string
}

type dependency struct {
	Condition string
	Required  *bool
}

type healthcheck struct {
	Test     []string
	Interval string
	Disable  bool
}

// pipeline lists the services built from the repository's Dockerfile.
var pipeline = []string{"emulator", "ingest", "bridge", "aggregate", "api"}

// loadCompose loads the compose file with every profile enabled, through the
// Compose specification's own loader (see spec_test.go).
func loadCompose(t *testing.T) file {
	t.Helper()
	p, err := loadProject(composePath, nil, "sample")
	if err != nil {
		t.Fatalf("compose-go loader refuses %s: %v", composePath, err)
	}
	if len(p.Services) == 0 {
		t.Fatalf("%s defines no services", composePath)
	}
	return fromProject(t, p)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// nativePorts returns the native stack's default ports (internal/stack) by the
// name of their variable without its STACK_ prefix, such as KAFKA_PORT.
func nativePorts(t *testing.T) map[string]int {
	t.Helper()
	ports := map[string]int{}
	for k, v := range stack.DefaultPorts().ByEnv() {
		ports[strings.TrimPrefix(k, "STACK_")] = v
	}
	for _, name := range []string{"KAFKA_PORT", "NATS_PORT", "NATS_MONITOR_PORT", "REDIS_PORT", "API_PORT",
		"INGEST_HEALTH_PORT", "BRIDGE_HEALTH_PORT", "AGGREGATE_HEALTH_PORT", "EMULATOR_PORT"} {
		if _, ok := ports[name]; !ok {
			t.Fatalf("internal/stack has no STACK_%s", name)
		}
	}
	return ports
}

// hostPort splits host:port, failing the test on anything else.
func hostPort(t *testing.T, what, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", what, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: port of %q: %v", what, addr, err)
	}
	return h, n
}

// urlHostPort returns the host and port of a URL such as nats://nats:4222.
func urlHostPort(t *testing.T, what, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %q: %v", what, raw, err)
	}
	return hostPort(t, what, u.Host)
}

// published returns the host ports a service publishes, by container port, and
// checks that each is bound to loopback.
func published(t *testing.T, name string, s service) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("%s: port %q: want 127.0.0.1:<host>:<container>", name, p)
			continue
		}
		host, err1 := strconv.Atoi(parts[1])
		ctr, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			t.Errorf("%s: port %q is not numeric", name, p)
			continue
		}
		out[ctr] = host
	}
	return out
}

// brokerDefaults returns the binary's default broker addresses, from the flag
// definitions of internal/brokers.
func brokerDefaults(t *testing.T) (kafka, nats, redis string) {
	t.Helper()
	f := cli.New("test", "", "", func(string) string { return "" }, io.Discard)
	var k brokers.Kafka
	var n brokers.NATS
	var r brokers.Redis
	brokers.KafkaFlags(f, &k, wire.DefaultTopic)
	brokers.NATSFlags(f, &n)
	brokers.RedisFlags(f, &r)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if len(k.Brokers) != 1 {
		t.Fatalf("default Kafka brokers = %v, want one", k.Brokers)
	}
	return k.Brokers[0], n.URL, r.URL
}

func TestServices(t *testing.T) {
	f := loadCompose(t)
	var names []string
	for name := range f.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"aggregate", "api", "bridge", "emulator", "ingest", "kafka", "nats", "redis"}
	if !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}
	for _, name := range names {
		s := f.Services[name]
		wantProfiles := []string(nil)
		if name == "emulator" {
			wantProfiles = []string{"sample"}
		}
		if !slices.Equal(s.Profiles, wantProfiles) {
			t.Errorf("%s: profiles = %v, want %v", name, s.Profiles, wantProfiles)
		}
	}
	for _, name := range pipeline {
		s := f.Services[name]
		if s.Build == nil || s.Build.Context != ".." || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: build = %+v, want the repository's Dockerfile (context ..)", name, s.Build)
		}
		if len(s.Command) == 0 || s.Command[0] != name {
			t.Errorf("%s: command = %v, want the %q subcommand", name, s.Command, name)
		}
	}
	for _, name := range []string{"kafka", "nats", "redis"} {
		s := f.Services[name]
		if len(s.Volumes) == 0 {
			t.Errorf("%s keeps no data in a volume", name)
		}
		for _, v := range s.Volumes {
			vol, _, _ := strings.Cut(v, ":")
			if _, ok := f.Volumes[vol]; !ok {
				t.Errorf("%s: volume %q is not declared under volumes:", name, vol)
			}
		}
	}
}

func TestPortsMatchNativeStack(t *testing.T) {
	f := loadCompose(t)
	native := nativePorts(t)
	kafkaDef, natsDef, redisDef := brokerDefaults(t)

	// The native stack serves the binary's defaults.
	if _, p := hostPort(t, "default Kafka broker", kafkaDef); p != native["KAFKA_PORT"] {
		t.Errorf("binary's Kafka default %s, native stack port %d", kafkaDef, native["KAFKA_PORT"])
	}
	if _, p := urlHostPort(t, "default NATS URL", natsDef); p != native["NATS_PORT"] {
		t.Errorf("binary's NATS default %s, native stack port %d", natsDef, native["NATS_PORT"])
	}
	if _, p := urlHostPort(t, "default Redis URL", redisDef); p != native["REDIS_PORT"] {
		t.Errorf("binary's Redis default %s, native stack port %d", redisDef, native["REDIS_PORT"])
	}

	// compose publishes the same ports on the host.
	cases := []struct {
		service string
		port    string
	}{
		{"kafka", "KAFKA_PORT"},
		{"nats", "NATS_PORT"},
		{"nats", "NATS_MONITOR_PORT"},
		{"redis", "REDIS_PORT"},
		{"api", "API_PORT"},
		{"emulator", "EMULATOR_PORT"},
	}
	for _, c := range cases {
		want := native[c.port]
		pub := published(t, c.service, f.Services[c.service])
		if pub[want] != want {
			t.Errorf("%s: publishes %v (container:host), want %d:%d like the native %s", c.service, pub, want, want, c.port)
		}
	}

	// Host clients reach Kafka at the same address as the native broker.
	adv := f.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	if !strings.Contains(adv, "://"+kafkaDef) {
		t.Errorf("kafka advertises %q; host clients need %s", adv, kafkaDef)
	}
}

// listenerPorts maps listener names to ports in a Kafka listener list such as
// "INTERNAL://kafka:19092,HOST://127.0.0.1:9092".
func listenerPorts(t *testing.T, list string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(list, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Fatalf("listener %q has no name://", l)
		}
		out[name] = addr
	}
	return out
}

func TestPipelineEnvironment(t *testing.T) {
	f := loadCompose(t)
	native := nativePorts(t)
	known := knownEnvVars(t)

	kafkaEnv := f.Services["kafka"].Environment
	internal := listenerPorts(t, kafkaEnv["KAFKA_ADVERTISED_LISTENERS"])[kafkaEnv["KAFKA_INTER_BROKER_LISTENER_NAME"]]
	if internal == "" {
		t.Fatalf("kafka: no advertised listener named by KAFKA_INTER_BROKER_LISTENER_NAME")
	}

	healthPort := map[string]int{
		"ingest":    native["INGEST_HEALTH_PORT"],
		"bridge":    native["BRIDGE_HEALTH_PORT"],
		"aggregate": native["AGGREGATE_HEALTH_PORT"],
	}
	needs := map[string][]string{
		"emulator":  {"WIKIFLOW_EMULATOR_ADDR"},
		"ingest":    {"WIKIFLOW_SOURCE_URL", "WIKIFLOW_KAFKA_BROKERS", "WIKIFLOW_KAFKA_TOPIC", "WIKIFLOW_HEALTH_ADDR"},
		"bridge":    {"WIKIFLOW_KAFKA_BROKERS", "WIKIFLOW_KAFKA_TOPIC", "WIKIFLOW_NATS_URL", "WIKIFLOW_STREAM", "WIKIFLOW_HEALTH_ADDR"},
		"aggregate": {"WIKIFLOW_NATS_URL", "WIKIFLOW_STREAM", "WIKIFLOW_REDIS_URL", "WIKIFLOW_HEALTH_ADDR"},
		"api":       {"WIKIFLOW_API_ADDR", "WIKIFLOW_REDIS_URL"},
	}
	natsPort := strconv.Itoa(native["NATS_PORT"])
	if !slices.Contains(f.Services["nats"].Command, natsPort) {
		t.Errorf("nats: command %v does not listen on %s", f.Services["nats"].Command, natsPort)
	}

	for _, name := range pipeline {
		env := f.Services[name].Environment
		for _, v := range needs[name] {
			if _, ok := env[v]; !ok {
				t.Errorf("%s: %s is not set", name, v)
			}
		}
		for k, raw := range env {
			if !strings.HasPrefix(k, "WIKIFLOW_") {
				t.Errorf("%s: %s: the pipeline is configured only with WIKIFLOW_* variables", name, k)
				continue
			}
			if !known[k] {
				t.Errorf("%s: %s is not the environment variable of any wikiflow flag", name, k)
			}
			v := raw
			switch k {
			case "WIKIFLOW_KAFKA_BROKERS":
				if want := "kafka:" + portOf(internal); v != want {
					t.Errorf("%s: %s = %q, want %q (kafka's internal listener)", name, k, v, want)
				}
			case "WIKIFLOW_KAFKA_TOPIC":
				if v != wire.DefaultTopic {
					t.Errorf("%s: %s = %q, want wire.DefaultTopic %q", name, k, v, wire.DefaultTopic)
				}
			case "WIKIFLOW_STREAM":
				if v != wire.DefaultStream {
					t.Errorf("%s: %s = %q, want wire.DefaultStream %q", name, k, v, wire.DefaultStream)
				}
			case "WIKIFLOW_NATS_URL":
				if h, p := urlHostPort(t, name+" "+k, v); h != "nats" || p != native["NATS_PORT"] {
					t.Errorf("%s: %s = %q, want nats://nats:%d", name, k, v, native["NATS_PORT"])
				}
			case "WIKIFLOW_REDIS_URL":
				if h, p := urlHostPort(t, name+" "+k, v); h != "redis" || p != native["REDIS_PORT"] {
					t.Errorf("%s: %s = %q, want redis://redis:%d/0", name, k, v, native["REDIS_PORT"])
				}
			case "WIKIFLOW_HEALTH_ADDR":
				if _, p := hostPort(t, name+" "+k, v); p != healthPort[name] {
					t.Errorf("%s: %s = %q, want port %d like the native stack", name, k, v, healthPort[name])
				}
			case "WIKIFLOW_API_ADDR":
				if _, p := hostPort(t, name+" "+k, v); p != native["API_PORT"] {
					t.Errorf("%s: %s = %q, want port %d", name, k, v, native["API_PORT"])
				}
			case "WIKIFLOW_EMULATOR_ADDR":
				if _, p := hostPort(t, name+" "+k, v); p != native["EMULATOR_PORT"] {
					t.Errorf("%s: %s = %q, want port %d", name, k, v, native["EMULATOR_PORT"])
				}
			}
		}
	}

	// Without WIKIFLOW_SOURCE_URL, ingest reads the live feed that the native stack
	// uses for SOURCE=live.
	if got := f.Services["ingest"].Environment["WIKIFLOW_SOURCE_URL"]; got != stack.LiveURL {
		t.Errorf("ingest: default source %q, native SOURCE=live reads %q", got, stack.LiveURL)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestHealthchecksAndDependencies(t *testing.T) {
	f := loadCompose(t)
	native := nativePorts(t)
	probePort := map[string]int{
		"emulator":  native["EMULATOR_PORT"],
		"ingest":    native["INGEST_HEALTH_PORT"],
		"bridge":    native["BRIDGE_HEALTH_PORT"],
		"aggregate": native["AGGREGATE_HEALTH_PORT"],
		"api":       native["API_PORT"],
	}
	for name, s := range f.Services {
		h := s.Healthcheck
		if h == nil || h.Disable || len(h.Test) < 2 || h.Test[0] == "NONE" {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		if h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %q must start with CMD or CMD-SHELL", name, h.Test[0])
		}
		if p, ok := probePort[name]; ok {
			probe := strings.Join(h.Test, " ")
			if strings.Contains(probe, "wget") || strings.Contains(probe, "curl") {
				t.Errorf("%s: the wikiflow image has neither wget nor curl: %s", name, probe)
			}
			if !strings.Contains(probe, "/dev/tcp/127.0.0.1/"+strconv.Itoa(p)) {
				t.Errorf("%s: healthcheck does not probe port %d: %s", name, p, probe)
			}
		}
		for dep, d := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if d.Condition != "service_healthy" {
				t.Errorf("%s: depends_on %s: condition %q, want service_healthy", name, dep, d.Condition)
			}
			if dep == "emulator" && (d.Required == nil || *d.Required) {
				t.Errorf("%s: depends_on emulator must be required: false (it runs only with --profile sample)", name)
			}
		}
	}
	wantDeps := map[string][]string{
		"ingest":    {"emulator", "kafka"},
		"bridge":    {"kafka", "nats"},
		"aggregate": {"nats", "redis"},
		"api":       {"redis"},
	}
	for name, want := range wantDeps {
		var got []string
		for dep := range f.Services[name].DependsOn {
			got = append(got, dep)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s depends on %v, want %v", name, got, want)
		}
	}
}

func TestImagesMatchNativeVersions(t *testing.T) {
	f := loadCompose(t)

	m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindStringSubmatch(readFile(t, pomPath))
	if m == nil {
		t.Fatalf("%s has no <kafka.version>", pomPath)
	}
	if want := "apache/kafka:" + m[1]; f.Services["kafka"].Image != want {
		t.Errorf("kafka image %q, want %q (the native broker's version)", f.Services["kafka"].Image, want)
	}
	if stack.KafkaVersion != m[1] {
		t.Errorf("internal/stack runs Kafka %s, %s pins %s", stack.KafkaVersion, pomPath, m[1])
	}

	m = regexp.MustCompile(`github\.com/nats-io/nats-server/v2 v(\d+\.\d+)\.`).FindStringSubmatch(readFile(t, toolsModPath))
	if m == nil {
		t.Fatalf("%s does not pin nats-server", toolsModPath)
	}
	if want := "nats:" + m[1] + "-alpine"; f.Services["nats"].Image != want {
		t.Errorf("nats image %q, want %q (the native nats-server's minor version)", f.Services["nats"].Image, want)
	}

	if img := f.Services["redis"].Image; img != "redis:7" {
		t.Errorf("redis image %q, want redis:7", img)
	}
	cmd := f.Services["redis"].Command
	if i := slices.Index(cmd, "--appendonly"); i < 0 || i+1 >= len(cmd) || cmd[i+1] != "yes" {
		t.Errorf("redis command %v lacks --appendonly yes", cmd)
	}
	for _, name := range pipeline {
		if img := f.Services[name].Image; img != "wikiflow:local" {
			t.Errorf("%s image %q, want wikiflow:local", name, img)
		}
	}
}

func TestDockerfile(t *testing.T) {
	df := readFile(t, dockerfile)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, goModPath))
	if goVersion == nil {
		t.Fatalf("%s has no go directive", goModPath)
	}
	for _, want := range []string{
		"FROM golang:" + goVersion[1] + " AS build",
		"GOWORK=off",
		"./cmd/wikiflow",
		"ENTRYPOINT [\"/usr/local/bin/wikiflow\"]",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("%s lacks %q", dockerfile, want)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*go build .*-o /out/wikiflow \./cmd/wikiflow\s*$`).MatchString(df) {
		t.Errorf("%s does not go build ./cmd/wikiflow into /out/wikiflow", dockerfile)
	}
	if !strings.Contains(df, "COPY --from=build /out/wikiflow /usr/local/bin/wikiflow") {
		t.Errorf("%s does not copy the built binary into the runtime image", dockerfile)
	}
	if _, err := os.Stat("../cmd/wikiflow"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/wikiflow: %v", err)
	}
	for _, line := range strings.Split(readFile(t, dockerignore), "\n") {
		line = strings.TrimSpace(line)
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "lab", "lab/emulator", "lab/gen", "ingest", "bridge", "aggregate", "api", "tui", "replay"} {
			if line == needed || line == needed+"/" || line == "*" {
				t.Errorf("%s excludes %q, which the image build needs", dockerignore, line)
			}
		}
	}
}

// knownEnvVars collects the environment variables of the binary's flags from the
// Go sources: string literals "WIKIFLOW_X", and prefix constants joined with a
// literal (const p = "WIKIFLOW_API_"; p+"ADDR").
func knownEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	full := regexp.MustCompile(`^WIKIFLOW_[A-Z0-9_]*[A-Z0-9]$`)
	known := map[string]bool{}
	fset := token.NewFileSet()
	for _, dir := range envSourceDirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			af, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			consts := map[string][]string{}
			ast.Inspect(af, func(n ast.Node) bool {
				if vs, ok := n.(*ast.ValueSpec); ok {
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := stringLit(vs.Values[i]); ok {
								consts[name.Name] = append(consts[name.Name], s)
							}
						}
					}
				}
				return true
			})
			ast.Inspect(af, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if s, ok := stringLit(n); ok && full.MatchString(s) {
						known[s] = true
					}
				case *ast.BinaryExpr:
					id, okX := n.X.(*ast.Ident)
					suffix, okY := stringLit(n.Y)
					if n.Op == token.ADD && okX && okY {
						for _, prefix := range consts[id.Name] {
							if s := prefix + suffix; full.MatchString(s) {
								known[s] = true
							}
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("read %s: %v", dir, err)
		}
	}
	if len(known) == 0 {
		t.Fatal("found no WIKIFLOW_* environment variable in the Go sources")
	}
	return known
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// TestKnownEnvVars checks the collector itself on names that must be found.
func TestKnownEnvVars(t *testing.T) {
	known := knownEnvVars(t)
	for _, want := range []string{"WIKIFLOW_KAFKA_BROKERS", "WIKIFLOW_NATS_URL", "WIKIFLOW_REDIS_URL"} {
		if !known[want] {
			t.Errorf("%s not found among the flag environment variables", want)
		}
	}
	for name := range known {
		if strings.HasSuffix(name, "_") {
			t.Errorf("prefix %s collected as a variable", name)
		}
	}
}
