package main

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is a fake environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestParseConfigPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   env
		check func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:8080" || c.AdminAddr != "127.0.0.1:9090" || c.DataDir != "./mtm-data" {
					t.Errorf("addresses/data dir = %q %q %q", c.Addr, c.AdminAddr, c.DataDir)
				}
				if c.SigningKeyDir != filepath.Join("mtm-data", "keys") {
					t.Errorf("signing key dir = %q, want mtm-data/keys", c.SigningKeyDir)
				}
				if c.MaxRequestBytes != 1<<20 || c.MaxRPCTimeout != 30*time.Second || c.AccessTTL != 15*time.Minute {
					t.Errorf("limits = %d %s %s", c.MaxRequestBytes, c.MaxRPCTimeout, c.AccessTTL)
				}
				if c.RedisURL != "" || c.Demo {
					t.Errorf("redis %q demo %v, want embedded store without demo", c.RedisURL, c.Demo)
				}
				if c.MaxStreams != 10000 || c.MaxPrincipalStreams != 16 {
					t.Errorf("stream caps = %d per server, %d per principal; want 10000, 16", c.MaxStreams, c.MaxPrincipalStreams)
				}
			},
		},
		{
			name: "stream caps from the environment",
			env:  env{"MTM_MAX_STREAMS": "500", "MTM_MAX_STREAMS_PER_PRINCIPAL": "4"},
			check: func(t *testing.T, c Config) {
				if c.MaxStreams != 500 || c.MaxPrincipalStreams != 4 {
					t.Errorf("stream caps = %d, %d; want 500, 4", c.MaxStreams, c.MaxPrincipalStreams)
				}
			},
		},
		{
			name: "environment over default",
			env: env{"MTM_ADDR": "0.0.0.0:8443", "MTM_DATA_DIR": "/var/lib/mtm", "MTM_ACCESS_TTL": "5m",
				"MTM_DEMO": "true", "MTM_MAX_REQUEST_BYTES": "4096"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "0.0.0.0:8443" || c.DataDir != "/var/lib/mtm" || c.AccessTTL != 5*time.Minute || !c.Demo || c.MaxRequestBytes != 4096 {
					t.Errorf("config = %+v", c)
				}
				if c.SigningKeyDir != "/var/lib/mtm/keys" {
					t.Errorf("signing key dir = %q, want it under MTM_DATA_DIR", c.SigningKeyDir)
				}
			},
		},
		{
			name: "flag over environment",
			args: []string{"--addr", "127.0.0.1:1234", "--access-ttl=2m", "--demo=false", "--signing-key-dir", "/keys"},
			env:  env{"MTM_ADDR": "0.0.0.0:8443", "MTM_ACCESS_TTL": "not-a-duration", "MTM_DEMO": "true"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:1234" || c.AccessTTL != 2*time.Minute || c.Demo || c.SigningKeyDir != "/keys" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "admin server disabled by flag",
			args: []string{"--admin-addr="},
			env:  env{"MTM_ADMIN_ADDR": "127.0.0.1:9999"},
			check: func(t *testing.T, c Config) {
				if c.AdminAddr != "" {
					t.Errorf("admin addr = %q, want disabled", c.AdminAddr)
				}
			},
		},
		{
			name: "admin server disabled by environment",
			env:  env{"MTM_ADMIN_ADDR": "off"},
			check: func(t *testing.T, c Config) {
				if c.AdminAddr != "" {
					t.Errorf("admin addr = %q, want disabled", c.AdminAddr)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env == nil {
				tc.env = env{}
			}
			c, err := parseConfig(tc.args, tc.env.get)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  env
		want []string
	}{
		{"unreadable environment values are all named", nil,
			env{"MTM_ACCESS_TTL": "soon", "MTM_MAX_REQUEST_BYTES": "lots", "MTM_DEMO": "maybe"},
			[]string{`MTM_ACCESS_TTL="soon"`, `MTM_MAX_REQUEST_BYTES="lots"`, `MTM_DEMO="maybe"`}},
		{"unknown flag", []string{"--port", "80"}, env{}, []string{"port"}},
		{"stray argument", []string{"serve"}, env{}, []string{"unexpected arguments"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, tc.env.get)
			if err == nil {
				t.Fatal("parseConfig succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := parseConfig([]string{"--help"}, env{}.get); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: err = %v, want flag.ErrHelp", err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	args := []string{
		"--addr", "localhost",
		"--admin-addr", "127.0.0.1:99999",
		"--data-dir", " ",
		"--redis-url", "http://user:s3cret@cache:6379",
		"--issuer", "",
		"--audience", "",
		"--access-ttl", "10s",
		"--signing-key-dir", "",
		"--max-request-bytes", "10",
		"--max-rpc-timeout", "0s",
		"--max-streams", "0",
		"--max-streams-per-principal", "-1",
		"--log-format", "xml",
		"--log-level", "loud",
		"--shutdown-timeout", "-1s",
		"--trusted-proxies", "10.0.0.0/8,proxy.internal",
		"--refresh-grace", "1h",
		"--redis-replica-acks", "-1",
		"--redis-replica-timeout", "5s",
		"--gc-percent", "5",
		"--record-cache", "0",
		"--key-cache", "-3",
		"--token-cache", "20000000",
	}
	c, err := parseConfig(args, env{}.get)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a configuration where everything is wrong")
	}
	msg := err.Error()
	for _, want := range []string{
		"--addr/MTM_ADDR", "--admin-addr/MTM_ADMIN_ADDR", "--data-dir/MTM_DATA_DIR", "--redis-url/MTM_REDIS_URL",
		"--issuer/MTM_ISSUER", "--audience/MTM_AUDIENCE", "--access-ttl/MTM_ACCESS_TTL",
		"--max-request-bytes/MTM_MAX_REQUEST_BYTES", "--max-rpc-timeout/MTM_MAX_RPC_TIMEOUT",
		"--max-streams/MTM_MAX_STREAMS", "--max-streams-per-principal/MTM_MAX_STREAMS_PER_PRINCIPAL",
		"--log-format/MTM_LOG_FORMAT", "--log-level/MTM_LOG_LEVEL", "--shutdown-timeout/MTM_SHUTDOWN_TIMEOUT",
		"--trusted-proxies/MTM_TRUSTED_PROXIES", "proxy.internal", "--refresh-grace/MTM_REFRESH_GRACE",
		"--redis-replica-acks/MTM_REDIS_REPLICA_ACKS", "--redis-replica-timeout/MTM_REDIS_REPLICA_TIMEOUT",
		"--gc-percent/MTM_GC_PERCENT",
		"--record-cache/MTM_RECORD_CACHE", "--key-cache/MTM_KEY_CACHE", "--token-cache/MTM_TOKEN_CACHE",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate does not name %s:\n%s", want, msg)
		}
	}
	// --signing-key-dir "" falls back to <data-dir>/keys, which is not empty.
	if strings.Contains(msg, "s3cret") {
		t.Errorf("Validate echoes the Redis password:\n%s", msg)
	}
}

func TestValidateRedisURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"redis://localhost:6379", true},
		{"rediss://user:pw@cache.internal:6380/2", true},
		{"redis://cache", true},
		{"http://cache:6379", false},
		{"redis://:6379", false},
		{"redis://cache:http", false},
		{"cache:6379", true},
		{"redis://c1:7000,c2:7001,c3:7002", true},
		{"redis+sentinel://s1:26379,s2:26379/primary", true},
		{"redis+sentinel://s1:26379", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			c, err := parseConfig([]string{"--redis-url", tc.url}, env{}.get)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}
