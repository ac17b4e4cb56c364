package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"
)

// Protocol is how the load generator talks to the server.
type Protocol string

// Protocols. Both use the Connect protocol through the generated clients.
const (
	// ConnectH2C is Connect with binary protobuf over cleartext HTTP/2,
	// many calls multiplexed on each connection (how the app talks).
	ConnectH2C Protocol = "connect-h2c"
	// ConnectJSON is Connect with JSON over HTTP/1.1, one call per
	// connection at a time (how a browser or curl talks).
	ConnectJSON Protocol = "connect-json"
)

// ParseProtocol accepts the names above.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case ConnectH2C, ConnectJSON:
		return p, nil
	}
	return "", fmt.Errorf("protocol %q: want %s or %s", s, ConnectH2C, ConnectJSON)
}

// Devices is a pool of HTTP clients that stand for phones: each dials from
// its own loopback source address (127.1.x.y) when the server is on
// 127.0.0.1, so that the server's per-address sign-in throttles see many
// devices, as in production, rather than one. Loopback only.
type Devices struct {
	baseURL string
	clients []*http.Client
	opts    []connect.ClientOption
}

// NewDevices returns n clients for the server at baseURL, which must be a
// loopback http:// URL.
func NewDevices(baseURL string, p Protocol, n int) (*Devices, error) {
	if err := CheckLoopback(baseURL); err != nil {
		return nil, fmt.Errorf("loadtest.NewDevices: %w", err)
	}
	u, _ := url.Parse(baseURL)
	bindSource := u.Hostname() == "127.0.0.1"
	d := &Devices{baseURL: baseURL, opts: []connect.ClientOption{connect.WithInterceptors(Interceptor())}}
	if p == ConnectJSON {
		d.opts = append(d.opts, connect.WithProtoJSON())
	}
	for i := range max(n, 1) {
		dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		if bindSource {
			dialer.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}
		}
		tr := &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		}
		tr.Protocols = new(http.Protocols)
		if p == ConnectJSON {
			tr.Protocols.SetHTTP1(true)
		} else {
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		d.clients = append(d.clients, &http.Client{Transport: tr})
	}
	return d, nil
}

// Len is the number of devices.
func (d *Devices) Len() int { return len(d.clients) }

// URL is the server's base URL.
func (d *Devices) URL() string { return d.baseURL }

// HTTP returns device i's HTTP client (i modulo Len).
func (d *Devices) HTTP(i int) *http.Client { return d.clients[i%len(d.clients)] }

// Options are the client options every generated client should be built
// with: the protocol and the measuring interceptor.
func (d *Devices) Options() []connect.ClientOption { return d.opts }

// Close drops idle connections.
func (d *Devices) Close() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// CheckLoopback refuses URLs that are not http:// on a loopback address: the
// load test never leaves the machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("server URL: %w", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("server URL %q: want http:// (h2c or HTTP/1.1 on loopback)", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("server URL %q: the load test only targets loopback addresses", raw)
	}
	return nil
}

// Authed wraps msg in a request carrying the access token.
func Authed[T any](msg *T, accessToken string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+accessToken)
	return req
}

// Deadline bounds one call of a scenario.
const Deadline = 10 * time.Second

// WithDeadline returns ctx bounded by Deadline.
func WithDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Deadline)
}
