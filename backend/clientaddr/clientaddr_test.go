package clientaddr

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.168.1.7, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		header Header
		peer   string
		values []string
		want   string
	}{
		{"untrusted peer ignores the header", XForwardedFor, "203.0.113.9:4711", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, one hop", XForwardedFor, "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed entries left of the real client are ignored", XForwardedFor, "10.1.2.3:80", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", XForwardedFor, "10.1.2.3:80", []string{"198.51.100.1, 10.9.9.9", "192.168.1.7"}, "198.51.100.1"},
		{"garbage stops at the nearest trusted hop", XForwardedFor, "10.1.2.3:80", []string{"198.51.100.1, nonsense, 10.9.9.9"}, "10.9.9.9"},
		{"no header: the proxy itself", XForwardedFor, "10.1.2.3:80", nil, "10.1.2.3"},
		{"all trusted: the farthest", XForwardedFor, "10.1.2.3:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"IPv6 and ports", XForwardedFor, "[fd00::1]:443", []string{"[2001:db8::5]:1234"}, "2001:db8::5"},
		{"4in6 peer is unmapped", XForwardedFor, "[::ffff:10.1.2.3]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"Forwarded for=", Forwarded, "10.1.2.3:80", []string{`for=1.1.1.1, for="[2001:db8::7]:99";proto=https`}, "2001:db8::7"},
		{"Forwarded header ignored when XFF is configured", XForwardedFor, "10.1.2.3:80", nil, "10.1.2.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewResolver(trusted, c.header)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for _, v := range c.values {
				h.Add(string(c.header), v)
			}
			// The header not configured is never read.
			if c.header == Forwarded {
				h.Add("X-Forwarded-For", "6.6.6.6")
			} else {
				h.Add("Forwarded", "for=6.6.6.6")
			}
			if got := r.Resolve(c.peer, h); got != netip.MustParseAddr(c.want) {
				t.Fatalf("Resolve = %v, want %v", got, c.want)
			}
		})
	}
}

func TestNoTrustedProxies(t *testing.T) {
	r, err := NewResolver(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Forwarded-For": {"198.51.100.1"}}
	if got := r.Resolve("127.0.0.1:5000", h); got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("Resolve = %v, want the peer 127.0.0.1", got)
	}
}

func TestParsePrefixesReportsEveryBadEntry(t *testing.T) {
	_, err := ParsePrefixes("10.0.0.0/8, bogus, 300.1.1.1")
	if err == nil || err.Error() != "not a CIDR or IP address: bogus, 300.1.1.1" {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewResolver(nil, "X-Real-IP"); err == nil {
		t.Fatal("an unknown header was accepted")
	}
}
