package brokers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenStream finds the JetStream stream name over nc and reads its state.
func OpenStream(ctx context.Context, nc *nats.Conn, name string) (jetstream.Stream, jetstream.StreamState, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("stream %s info: %w", name, err)
	}
	return st, info.State, nil
}
