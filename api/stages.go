package api

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
)

// Limits of the scrape of one stage's metrics page.
const (
	stageTimeout  = 300 * time.Millisecond
	maxStagePage  = 1 << 20
	stageUpFamily = "# HELP wikiflow_stage_up Whether the stage's metrics page (url, credentials shown as xxxxx) answered the last scrape: 1 yes, 0 no.\n# TYPE wikiflow_stage_up gauge\n"
)

// checkStageURL accepts an http:// or https:// URL with a host.
func checkStageURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("stage-metrics: %q is not an http:// or https:// URL", brokers.Redact(u))
	}
	return nil
}

// stagePages appends the metrics pages of the other stages to /metrics. Pages
// are fetched concurrently; one that fails, answers other than 200 or exceeds
// 1 MiB is left out whole (never cut mid-line) and reported by wikiflow_stage_up 0.
type stagePages struct {
	client *http.Client
	log    *slog.Logger
	urls   []string
	labels []string // urls with their credentials redacted

	mu      sync.Mutex
	lastErr []string // per stage: the last failure logged ("" = up), so each change is logged once
}

func newStagePages(urls []string, log *slog.Logger) *stagePages {
	p := &stagePages{
		client:  &http.Client{Timeout: stageTimeout},
		log:     log,
		urls:    urls,
		lastErr: make([]string, len(urls)),
	}
	for _, u := range urls {
		p.labels = append(p.labels, brokers.Redact(u))
	}
	return p
}

// write fetches every page and writes them, then the wikiflow_stage_up family.
func (p *stagePages) write(w io.Writer) {
	pages := make([][]byte, len(p.urls))
	errs := make([]error, len(p.urls))
	var wg sync.WaitGroup
	for i := range p.urls {
		wg.Go(func() { pages[i], errs[i] = p.fetch(p.urls[i]) })
	}
	wg.Wait()
	var b bytes.Buffer
	for _, page := range pages {
		b.Write(page)
		if len(page) > 0 && page[len(page)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	b.WriteString(stageUpFamily)
	for i, label := range p.labels {
		up := 1
		if errs[i] != nil {
			up = 0
		}
		fmt.Fprintf(&b, "wikiflow_stage_up{url=\"%s\"} %d\n", escapeLabel(label), up)
		p.report(i, errs[i])
	}
	_, _ = w.Write(b.Bytes())
}

func (p *stagePages) fetch(u string) ([]byte, error) {
	resp, err := p.client.Get(u)
	if err != nil {
		return nil, err // net/http shows the URL with its password redacted
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, maxStagePage+1))
	if err != nil {
		return nil, fmt.Errorf("read page: %w", err)
	}
	if len(page) > maxStagePage {
		return nil, fmt.Errorf("page larger than %d bytes", maxStagePage)
	}
	return page, nil
}

// report logs a stage's scrape failing or coming back, once per change.
func (p *stagePages) report(i int, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	changed := p.lastErr[i] != msg
	p.lastErr[i] = msg
	p.mu.Unlock()
	switch {
	case !changed:
	case err != nil:
		p.log.Warn("stage metrics unavailable", "url", p.labels[i], "err", msg)
	default:
		p.log.Info("stage metrics available again", "url", p.labels[i])
	}
}

// escapeLabel escapes a Prometheus label value: backslash, double quote and
// line feed.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
