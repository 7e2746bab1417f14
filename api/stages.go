package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/obs"
)

// Limits of the scrape of one stage's metrics page.
const (
	stageTimeout = 300 * time.Millisecond
	maxStagePage = 1 << 20
)

// stagePrefix begins the names of the stage families the API's page repeats;
// the others (go_*, process_*) describe each stage's process and stay on its
// own page.
const stagePrefix = obs.Namespace + "_"

// checkStageURL accepts an http:// or https:// URL with a host.
func checkStageURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("stage-metrics: %q is not an http:// or https:// URL", brokers.Redact(u))
	}
	return nil
}

// stagePages gathers the metrics pages of the other stages for /metrics.
// Pages are fetched concurrently; one that fails, answers other than 200, is
// not a valid text exposition or exceeds 1 MiB is left out whole and reported
// by wikiflow_stage_up 0.
type stagePages struct {
	client *http.Client
	log    *slog.Logger
	urls   []string
	labels []string             // urls with their credentials redacted
	up     *prometheus.GaugeVec // wikiflow_stage_up, by url (redacted)

	mu      sync.Mutex
	lastErr []string // per stage: the last failure logged ("" = up), so each change is logged once
}

func newStagePages(urls []string, log *slog.Logger) *stagePages {
	p := &stagePages{
		client:  &http.Client{Timeout: stageTimeout},
		log:     log,
		urls:    urls,
		lastErr: make([]string, len(urls)),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: obs.Namespace, Name: "stage_up",
			Help: "Whether the stage's metrics page (url, credentials shown as xxxxx) answered the last scrape: 1 yes, 0 no.",
		}, []string{"url"}),
	}
	for _, u := range urls {
		label := brokers.Redact(u)
		p.labels = append(p.labels, label)
		p.up.WithLabelValues(label).Set(0)
	}
	return p
}

// Gather fetches every page and returns their wikiflow_ families, setting
// wikiflow_stage_up for each. It implements prometheus.Gatherer; a page that
// fails is not an error of the gathering (wikiflow_stage_up says it).
func (p *stagePages) Gather() ([]*dto.MetricFamily, error) {
	pages := make([][]*dto.MetricFamily, len(p.urls))
	errs := make([]error, len(p.urls))
	var wg sync.WaitGroup
	for i := range p.urls {
		wg.Go(func() { pages[i], errs[i] = p.fetch(p.urls[i]) })
	}
	wg.Wait()
	// Two URLs that differ only in their credentials share a label: it shows
	// 1 when every one of them answered.
	up := map[string]float64{}
	var out []*dto.MetricFamily
	for i, page := range pages {
		if _, seen := up[p.labels[i]]; !seen {
			up[p.labels[i]] = 1
		}
		if errs[i] != nil {
			up[p.labels[i]] = 0
		}
		p.report(i, errs[i])
		out = append(out, page...)
	}
	for label, v := range up {
		p.up.WithLabelValues(label).Set(v)
	}
	return out, nil
}

// fetch returns the wikiflow_ families of the page at u.
func (p *stagePages) fetch(u string) ([]*dto.MetricFamily, error) {
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
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse page: %w", err)
	}
	var out []*dto.MetricFamily
	for name, mf := range mfs {
		if strings.HasPrefix(name, stagePrefix) {
			out = append(out, mf)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no wikiflow_ metric on the page")
	}
	return out, nil
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
