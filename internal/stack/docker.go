package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Docker runs the same commands with docker compose on compose/docker-compose.yml
// (STACK=docker).
type Docker struct {
	*Stack
}

// compose runs `docker compose -f compose/docker-compose.yml args...` after
// checking that Docker and its daemon are there; env is added to its environment.
func (d Docker) compose(ctx context.Context, env []string, args ...string) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("docker is not installed: install Docker Engine or Docker Desktop to use STACK=docker, or run the native stack (go tool task up)")
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() != nil {
		return errors.New("docker compose is not available: install the Docker Compose plugin (Debian: docker-compose-plugin)")
	}
	if exec.CommandContext(ctx, "docker", "info").Run() != nil {
		return errors.New("the Docker daemon is not reachable (docker info failed): start Docker, or run the native stack (go tool task up)")
	}
	full := append([]string{"compose", "-f", filepath.Join(d.Root, "compose", "docker-compose.yml")}, args...)
	cmd := exec.CommandContext(ctx, "docker", full...)
	cmd.Stdout, cmd.Stderr, cmd.Env = d.Out, d.Err, append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker compose %v: %w", args, err)
	}
	return nil
}

// Run performs one stack command (infra, up, down, status, logs, clean) in Docker.
func (d Docker) Run(ctx context.Context, command string, follow bool, names ...string) error {
	switch command {
	case "infra":
		return d.compose(ctx, nil, "up", "-d", "--wait", "kafka", "nats", "redis")
	case "up":
		return d.up(ctx)
	case "down":
		return d.compose(ctx, nil, "--profile", "sample", "down")
	case "status":
		return d.compose(ctx, nil, "--profile", "sample", "ps")
	case "logs":
		args := []string{"--profile", "sample", "logs", "--tail", fmt.Sprint(d.LogLines)}
		if follow || d.LogsFollow {
			args = append(args, "--follow")
		}
		return d.compose(ctx, nil, append(args, names...)...)
	case "clean":
		return d.compose(ctx, nil, "--profile", "sample", "down", "--volumes")
	}
	return fmt.Errorf("unknown command %q", command)
}

func (d Docker) up(ctx context.Context) error {
	start := time.Now()
	url, err := d.SourceURL()
	if err != nil {
		return err
	}
	var profile []string
	if d.Source == "sample" {
		profile = []string{"--profile", "sample"}
		url = fmt.Sprintf("http://emulator:%d/v2/stream/recentchange", d.Ports.Emulator)
	}
	args := append(profile, "up", "-d", "--build", "--wait")
	if err := d.compose(ctx, []string{"WIKIFLOW_SOURCE_URL=" + url}, args...); err != nil {
		return err
	}
	d.say(`
wikiflow is up in Docker in %s (source: %s).
  web page:      http://127.0.0.1:%[3]d/
  counts:        curl -s localhost:%[3]d/stats
  dashboard:     go tool task dash
  status, logs:  STACK=docker go tool task status / STACK=docker go tool task logs
  stop:          STACK=docker go tool task down`, seconds(time.Since(start)), url, d.Ports.API)
	return nil
}
