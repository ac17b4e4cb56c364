package redisstore_test

import (
	"reflect"
	"strings"
	"testing"

	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		url     string
		want    redisstore.Config
		wantTLS bool
	}{
		{"redis://127.0.0.1:7000", redisstore.Config{Addrs: []string{"127.0.0.1:7000"}}, false},
		{"redis://:s%40cret@cache.internal/2", redisstore.Config{Addrs: []string{"cache.internal:6379"}, Password: "s@cret", DB: 2}, false},
		{"rediss://mtm:pw@redis.example.org:6380", redisstore.Config{Addrs: []string{"redis.example.org:6380"}, Username: "mtm", Password: "pw"}, true},
		{"redis://a:7000,b:7001,c:7002", redisstore.Config{Addrs: []string{"a:7000", "b:7001", "c:7002"}, Cluster: true}, false},
		{"a:7000, b:7001", redisstore.Config{Addrs: []string{"a:7000", "b:7001"}, Cluster: true}, false},
		{"redis://seed:7000?cluster=true", redisstore.Config{Addrs: []string{"seed:7000"}, Cluster: true}, false},
		{"redis+sentinel://:pw@s1:26379,s2:26379/mymaster?db=1&sentinel_password=spw",
			redisstore.Config{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", Password: "pw", SentinelPassword: "spw", DB: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			got, err := redisstore.ParseConfig(c.url)
			if err != nil {
				t.Fatal(err)
			}
			if (got.TLS != nil) != c.wantTLS {
				t.Fatalf("TLS = %v, want %v", got.TLS != nil, c.wantTLS)
			}
			got.TLS = nil
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseConfig(%q) = %+v, want %+v", c.url, got, c.want)
			}
		})
	}
	for _, bad := range []string{"", "http://x", "redis://h/notadb", "redis+sentinel://s1:26379"} {
		if _, err := redisstore.ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q): no error", bad)
		}
	}
}

func TestCheckDurability(t *testing.T) {
	cases := []struct {
		name string
		opts []redistest.Option
		want []string // substrings, one per expected warning
	}{
		{"AppendOnlyOff", nil, []string{"appendonly is \"no\""}},
		{"EverySec", []redistest.Option{redistest.AppendOnly(true), redistest.AppendFsync("everysec")}, []string{"appendfsync is everysec"}},
		{"Always", []redistest.Option{redistest.AppendOnly(true), redistest.AppendFsync("always")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := redistest.StartServer(t, c.opts...)
			s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			got, err := s.CheckDurability(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("warnings %q, want %d", got, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q does not mention %q", got[i], w)
				}
			}
		})
	}
	t.Run("EvictionAndCluster", func(t *testing.T) {
		cl := redistest.StartCluster(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
		s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, redisstore.Options{KEK: redistest.KEK()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Client().Do(t.Context(), "CONFIG", "SET", "maxmemory-policy", "allkeys-lru").Err(); err != nil {
			t.Fatal(err)
		}
		got, err := s.CheckDurability(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !strings.Contains(got[0], "maxmemory-policy") {
			t.Fatalf("warnings %q, want exactly one about maxmemory-policy on the node that was changed", got)
		}
	})
}
