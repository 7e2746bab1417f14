package brokers

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisClusterURLs(t *testing.T) {
	cases := []struct {
		r       Redis
		cluster bool
		bad     string
	}{
		{r: Redis{URL: "redis://127.0.0.1:6379/0"}},
		{r: Redis{URL: "redis://127.0.0.1:7000", Cluster: true}, cluster: true},
		{r: Redis{URL: "redis://a:7000, redis://b:7001,redis://c:7002"}, cluster: true},
		{r: Redis{URL: "redis://a:7000,redis://b:7001/2"}, bad: "database 0 only"},
		{r: Redis{URL: "redis://a:7000/1", Cluster: true}, bad: "database 0 only"},
		{r: Redis{URL: "redis://u:secret@a:7000,http://b"}, bad: "not a valid"},
	}
	for _, tc := range cases {
		if got := tc.r.IsCluster(); got != tc.cluster && tc.bad == "" {
			t.Errorf("%+v: IsCluster %v", tc.r, got)
		}
		o, err := tc.r.Options()
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%+v: error %v, want %q without the secret", tc.r, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.r, err)
		}
		c := tc.r.NewClient(o)
		cc, isCluster := c.(*redis.ClusterClient)
		if isCluster != tc.cluster {
			t.Errorf("%+v: client %T", tc.r, c)
		}
		if isCluster && len(cc.Options().Addrs) != len(strings.Split(tc.r.URL, ",")) {
			t.Errorf("%+v: addresses %v", tc.r, cc.Options().Addrs)
		}
		_ = c.Close()
	}
}
