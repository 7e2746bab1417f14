package bridge

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// natsCluster starts three JetStream servers in one cluster in this process and
// returns their client URLs.
func natsCluster(t *testing.T) ([]string, []*natsserver.Server) {
	t.Helper()
	dir := t.TempDir()
	ports := make([]int, 3)
	var routes []*url.URL
	for i := range ports {
		ports[i] = testenv.FreePort(t)
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	var urls []string
	var srvs []*natsserver.Server
	for i := range 3 {
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Cluster: natsserver.ClusterOpts{Name: "wikiflow", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes, NoLog: true, NoSigs: true,
		}
		srv := testenv.NATSWith(t, opts)
		srvs = append(srvs, srv)
		urls = append(urls, srv.ClientURL())
	}
	return urls, srvs
}

// stepDown asks the stream's leader to step down until another server leads
// (a stepped-down leader can be elected again) and returns the new leader.
func stepDown(t *testing.T, ctx context.Context, nc *nats.Conn, js jetstream.JetStream, name string) string {
	t.Helper()
	before := leader(t, ctx, js, name)
	for ctx.Err() == nil {
		if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, nil); err != nil {
			t.Fatalf("step down: %v", err)
		}
		wait := time.Now().Add(5 * time.Second)
		for time.Now().Before(wait) && ctx.Err() == nil {
			if l := leader(t, ctx, js, name); l != "" && l != before {
				return l
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatalf("no new leader after %s stepped down", before)
	return ""
}

func leader(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return ""
	}
	if c := s.CachedInfo().Cluster; c != nil {
		return c.Leader
	}
	return ""
}

// TestDedupeHoldsAcrossLeaderChanges is what the bridge's exactly-once rests on
// in a cluster: a publish retried with the same Nats-Msg-Id after the stream's
// leader changed, inside the duplicate window, must be refused as a duplicate by
// the new leader. Five leader changes, every earlier id published again after
// each, and one leader server shut down: the stream keeps one message per id.
func TestDedupeHoldsAcrossLeaderChanges(t *testing.T) {
	urls, srvs := natsCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const name = "DEDUPE"
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{"dedupe.>"}, Replicas: 3, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage}
	for ctx.Err() == nil {
		// Until the meta leader is elected a request goes unanswered: try again.
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.CreateStream(actx, cfg)
		acancel()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	var ids []string
	publish := func(id string) *jetstream.PubAck {
		t.Helper()
		m := nats.NewMsg("dedupe.e")
		m.Header.Set(nats.MsgIdHdr, id)
		m.Data = []byte(id)
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			ack, err := js.PublishMsg(pctx, m)
			pcancel()
			if err == nil {
				return ack
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
			time.Sleep(100 * time.Millisecond) // no leader for a moment
		}
	}
	for round := range 6 {
		for i := range 20 {
			id := fmt.Sprintf("r%d-%d", round, i)
			if ack := publish(id); ack.Duplicate {
				t.Fatalf("first publish of %s was taken as a duplicate", id)
			}
			ids = append(ids, id)
		}
		if round < 5 {
			stepDown(t, ctx, nc, js, name)
		} else {
			// The last change is a leader that goes away, not one that steps down.
			l := leader(t, ctx, js, name)
			for _, s := range srvs {
				if s.Name() == l {
					s.Shutdown()
				}
			}
		}
		for _, id := range ids {
			if ack := publish(id); !ack.Duplicate {
				t.Fatalf("after leader change %d, %s was stored again (sequence %d)", round+1, id, ack.Sequence)
			}
		}
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(ids)) {
		t.Errorf("the stream holds %d messages for %d ids", info.State.Msgs, len(ids))
	}
}
