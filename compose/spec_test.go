package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// loadProject loads a compose file with the Compose specification's reference
// loader (compose-spec/compose-go, the one docker compose uses): schema
// validation, merge keys, interpolation of ${VAR:-default} from env only (not the
// process environment, no .env file), normalisation and consistency checks
// (depends_on, volumes, networks).
func loadProject(path string, env []string, profiles ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithEnv(env), cli.WithDiscardEnvFile, cli.WithProfiles(profiles))
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	return opts.LoadProject(context.Background())
}

// fromProject converts the loader's model into the file the other tests read.
func fromProject(t *testing.T, p *types.Project) file {
	t.Helper()
	dir, err := filepath.Abs(filepath.Dir(composePath))
	if err != nil {
		t.Fatal(err)
	}
	f := file{Name: p.Name, Services: map[string]service{}, Volumes: map[string]any{}}
	for name, v := range p.Volumes {
		f.Volumes[name] = v
	}
	for name, sc := range p.Services {
		s := service{Image: sc.Image, Command: sc.Command, Profiles: sc.Profiles, Environment: map[string]string{}, DependsOn: map[string]dependency{}}
		if sc.Build != nil {
			rel, err := filepath.Rel(dir, sc.Build.Context)
			if err != nil {
				t.Fatalf("%s: build context %s: %v", name, sc.Build.Context, err)
			}
			s.Build = &build{Context: rel, Dockerfile: sc.Build.Dockerfile}
		}
		for k, v := range sc.Environment {
			if v == nil {
				t.Errorf("%s: %s has no value (it would be taken from the host's environment)", name, k)
				continue
			}
			s.Environment[k] = *v
		}
		for _, pc := range sc.Ports {
			if pc.Protocol != "tcp" {
				t.Errorf("%s: port %d/%s, want tcp", name, pc.Target, pc.Protocol)
			}
			s.Ports = append(s.Ports, fmt.Sprintf("%s:%s:%d", pc.HostIP, pc.Published, pc.Target))
		}
		for dep, d := range sc.DependsOn {
			required := d.Required
			s.DependsOn[dep] = dependency{Condition: d.Condition, Required: &required}
		}
		if h := sc.HealthCheck; h != nil {
			s.Healthcheck = &healthcheck{Test: h.Test, Disable: h.Disable}
			if h.Interval != nil {
				s.Healthcheck.Interval = h.Interval.String()
			}
		}
		for _, v := range sc.Volumes {
			s.Volumes = append(s.Volumes, v.Source+":"+v.Target)
		}
		f.Services[name] = s
	}
	return f
}

// TestComposeSpecLoaderLoadsTheFile loads the file as `docker compose up` and
// `docker compose --profile sample up` would, and as STACK=docker SOURCE=sample
// does with WIKIFLOW_SOURCE_URL set.
func TestComposeSpecLoaderLoadsTheFile(t *testing.T) {
	p, err := loadProject(composePath, nil)
	if err != nil {
		t.Fatalf("compose-go loader refuses %s: %v", composePath, err)
	}
	if got, want := p.ServiceNames(), []string{"aggregate", "api", "bridge", "ingest", "kafka", "nats", "redis"}; !slices.Equal(got, want) {
		t.Errorf("services without a profile = %v, want %v", got, want)
	}
	if got := p.DisabledServiceNames(); !slices.Equal(got, []string{"emulator"}) {
		t.Errorf("services disabled without a profile = %v, want [emulator]", got)
	}
	if p.Name != "wikiflow" {
		t.Errorf("project name %q, want wikiflow", p.Name)
	}
	const sample = "http://emulator:8090/v2/stream/recentchange"
	p, err = loadProject(composePath, []string{"WIKIFLOW_SOURCE_URL=" + sample}, "sample")
	if err != nil {
		t.Fatalf("compose-go loader refuses %s with --profile sample: %v", composePath, err)
	}
	if got := p.ServiceNames(); len(got) != 8 {
		t.Errorf("services with --profile sample = %v, want all 8", got)
	}
	ingest, err := p.GetService("ingest")
	if err != nil {
		t.Fatal(err)
	}
	if v := ingest.Environment["WIKIFLOW_SOURCE_URL"]; v == nil || *v != sample {
		t.Errorf("ingest's WIKIFLOW_SOURCE_URL not interpolated from the environment: %v", v)
	}
	if d := ingest.DependsOn["emulator"]; d.Required || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("ingest depends_on emulator = %+v, want service_healthy, not required", d)
	}
}

// TestComposeSpecLoaderRefusesBrokenCopies shows that the loader, not only a
// YAML parser, judges the file: copies broken in one place each are refused.
func TestComposeSpecLoaderRefusesBrokenCopies(t *testing.T) {
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(services map[string]any)
		want   string // in the loader's error
	}{
		{"unchanged", func(map[string]any) {}, ""},
		{"depends on an unknown service", func(s map[string]any) {
			deps := svc(s, "bridge")["depends_on"].(map[string]any)
			deps["kafkaa"] = deps["kafka"]
			delete(deps, "kafka")
		}, "kafkaa"},
		{"unknown depends_on condition", func(s map[string]any) {
			svc(s, "api")["depends_on"].(map[string]any)["redis"].(map[string]any)["condition"] = "healthy"
		}, "condition"},
		{"port out of range", func(s map[string]any) {
			svc(s, "api")["ports"] = []any{"127.0.0.1:80800:8080"}
		}, "80800"},
		{"healthcheck interval not a duration", func(s map[string]any) {
			svc(s, "redis")["healthcheck"].(map[string]any)["interval"] = "five seconds"
		}, "five seconds"},
		{"environment value not a scalar", func(s map[string]any) {
			svc(s, "ingest")["environment"].(map[string]any)["WIKIFLOW_KAFKA_TOPIC"] = map[string]any{"name": "x"}
		}, "environment"},
		{"undeclared volume", func(s map[string]any) {
			svc(s, "redis")["volumes"] = []any{"redis-dataa:/data"}
		}, "redis-dataa"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc map[string]any
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			c.mutate(doc["services"].(map[string]any))
			out, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = loadProject(path, nil, "sample")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("the unchanged file, re-encoded, is refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted")
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("error does not name %q: %v", c.want, err)
			}
			if err != nil {
				t.Logf("refused: %v", err)
			}
		})
	}
}

// svc returns the service name of a decoded compose document's services.
func svc(services map[string]any, name string) map[string]any {
	return services[name].(map[string]any)
}
