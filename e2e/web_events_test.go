package e2e

import "github.com/wikiflow/wikiflow/api"

// configureEvents points the API's /v2/stream/recentchange at the test's NATS.
func configureEvents(cfg *api.Config, natsURL string) {
	cfg.Events.NATS.URL = natsURL
}
