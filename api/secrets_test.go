package api

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/obs"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// checkNoSecret fails the test when text holds any of the secrets.
func checkNoSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q:\n%s", what, s, truncate(text))
		}
	}
}

// TestNoSecretInLogs runs the server with Redis credentials given in every way a
// user can (flag value, environment, URL forms, text and JSON logs) against a
// Redis that is not there, and checks that no log line, response body or metric
// shows the password, while the log still names the (redacted) URL.
func TestNoSecretInLogs(t *testing.T) {
	cases := []struct {
		name, url, password string
		secrets             []string
		format              string
		env                 bool
	}{
		{name: "user and password", url: "redis://user:s3cretPW@127.0.0.1:1/0", secrets: []string{"s3cretPW"}, format: "text"},
		{name: "user and password, JSON", url: "redis://user:s3cretPW@127.0.0.1:1/0", secrets: []string{"s3cretPW"}, format: "json"},
		{name: "environment", url: "redis://user:s3cretPW@127.0.0.1:1/0", secrets: []string{"s3cretPW"}, format: "json", env: true},
		{name: "rediss", url: "rediss://user:s3cretPW@127.0.0.1:1/0", secrets: []string{"s3cretPW"}, format: "text", env: true},
		{name: "password only", url: "redis://:s3cretPW@127.0.0.1:1/0", secrets: []string{"s3cretPW"}, format: "text"},
		{name: "percent-encoded", url: "redis://user:p%40ss%3Aw0rd-x@127.0.0.1:1/0", secrets: []string{"p%40ss", "p@ss", "w0rd-x"}, format: "json"},
		{name: "password setting", url: "redis://127.0.0.1:1/0", password: "pa55-setting", secrets: []string{"pa55-setting"}, format: "text", env: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"WIKIFLOW_API_ADDR": "127.0.0.1:0"}
			args := []string{}
			if tc.env {
				env["WIKIFLOW_REDIS_URL"] = tc.url
				env["WIKIFLOW_REDIS_PASSWORD"] = tc.password
			} else {
				args = append(args, "--redis-url", tc.url)
			}
			f := cli.New("api", "serve", "", func(k string) string { return env[k] }, io.Discard)
			var cfg Config
			Flags(f, &cfg)
			if err := f.Parse(args); err != nil {
				t.Fatal(err)
			}
			if cfg.Redis.URL != tc.url {
				t.Fatalf("redis url %q, want %q", cfg.Redis.URL, tc.url)
			}
			var out syncBuffer
			log, err := obs.NewLogger(&out, "debug", tc.format)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// Runs after the server stopped: every line it logged is in out.
				logged := out.String()
				checkNoSecret(t, "the log", logged, tc.secrets...)
				if !strings.Contains(logged, "serving") || !strings.Contains(logged, "127.0.0.1:1") {
					t.Errorf("the start line does not name the Redis address:\n%s", logged)
				}
			})
			base := startServer(t, s)
			for _, path := range []string{"/stats", "/stats?window=5m", "/readyz", "/metrics", "/stats/stream?interval=x"} {
				_, body := fetch(t, base+path)
				checkNoSecret(t, "GET "+path, string(body), tc.secrets...)
			}
		})
	}
}
