// Package clientaddr resolves the address of the client behind a request:
// the TCP peer, unless the peer is a configured trusted proxy, in which case
// the rightmost address in the forwarding header that is not itself a
// trusted proxy. It is the one place that decides, and puts the answer in
// the request's context for throttles, logs and audit.
package clientaddr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header names the forwarding header a trusted proxy writes.
type Header string

// The forwarding headers understood. A proxy must append to (or replace)
// the header it is configured for; the other one is ignored.
const (
	XForwardedFor Header = "X-Forwarded-For" // nginx $proxy_add_x_forwarded_for, Envoy
	Forwarded     Header = "Forwarded"       // RFC 7239 for= parameters
)

// maxHops bounds how many forwarding entries are examined.
const maxHops = 32

// Resolver finds client addresses. The zero value trusts no proxy: the
// client is always the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// NewResolver returns a Resolver that takes the client from header when
// the TCP peer is inside one of trusted. An empty header means
// XForwardedFor; any header other than the two known is an error.
func NewResolver(trusted []netip.Prefix, header Header) (*Resolver, error) {
	switch {
	case header == "":
		header = XForwardedFor
	case strings.EqualFold(string(header), string(XForwardedFor)):
		header = XForwardedFor
	case strings.EqualFold(string(header), string(Forwarded)):
		header = Forwarded
	default:
		return nil, fmt.Errorf("clientaddr.NewResolver: unknown forwarding header %q (want %s or %s)", header, XForwardedFor, Forwarded)
	}
	ps := make([]netip.Prefix, len(trusted))
	for i, p := range trusted {
		ps[i] = p.Masked()
	}
	return &Resolver{trusted: ps, header: header}, nil
}

// ParsePrefixes parses a comma-separated list of CIDRs or single addresses
// (an address is its own /32 or /128), reporting every bad entry.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var (
		out []netip.Prefix
		bad []string
	)
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, f)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not a CIDR or IP address: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// isTrusted reports whether a is one of the trusted proxies.
func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address of a request that arrived from
// remoteAddr (host:port, as in http.Request.RemoteAddr) with header h.
// When the peer is trusted it walks the forwarding entries from the right
// (the nearest hop) and returns the first one that is not a trusted proxy;
// an entry that does not parse stops the walk at the hop to its right,
// since only the trusted proxies' own entries can be relied on. The result
// is invalid only when remoteAddr itself is not an address.
func (r *Resolver) Resolve(remoteAddr string, h http.Header) netip.Addr {
	peer := parseHost(remoteAddr)
	if !peer.IsValid() || len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer
	}
	hops := r.hops(h)
	client := peer
	for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxHops; i-- {
		a := parseHost(hops[i])
		if !a.IsValid() {
			return client
		}
		client = a
		if !r.isTrusted(a) {
			return a
		}
	}
	return client
}

// hops returns the forwarding entries of the configured header, leftmost
// (farthest) first, across repeated header lines.
func (r *Resolver) hops(h http.Header) []string {
	var out []string
	for _, line := range h.Values(string(r.header)) {
		for _, el := range strings.Split(line, ",") {
			el = strings.TrimSpace(el)
			if r.header == Forwarded {
				el = forwardedFor(el)
			}
			out = append(out, el)
		}
	}
	return out
}

// forwardedFor returns the for= value of one RFC 7239 element ("" when it
// has none, which then stops the walk).
func forwardedFor(el string) string {
	for _, pair := range strings.Split(el, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// parseHost parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port"; zones and
// obfuscated identifiers ("unknown", "_hidden") are invalid.
func parseHost(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

type ctxKey struct{}

// NewContext returns ctx carrying the client address a.
func NewContext(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// FromContext returns the client address that Middleware resolved, and
// whether there is one.
func FromContext(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(ctxKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}

// String returns the client address of ctx as text, or "" when unknown.
func String(ctx context.Context) string {
	if a, ok := FromContext(ctx); ok {
		return a.String()
	}
	return ""
}

// Middleware resolves every request's client address once and puts it in
// the request's context (see FromContext).
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := r.Resolve(req.RemoteAddr, req.Header)
		next.ServeHTTP(w, req.WithContext(NewContext(req.Context(), a)))
	})
}
