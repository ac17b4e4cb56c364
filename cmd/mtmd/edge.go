package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
)

// edgeFlags configure what browsers and TLS clients meet at the API port:
// CORS (cors.go) and TLS with certificate reloading (tls.go).
type edgeFlags struct {
	CORSOrigins string // comma-separated origins allowed to call the API from a browser; "" none
	TLSCert     string // PEM certificate chain file; with TLSKey, serve TLS
	TLSKey      string // PEM private key file
}

func bindEdgeFlags(fs *flag.FlagSet, e *edgeFlags) {
	fs.StringVar(&e.CORSOrigins, "cors-origins", "", "comma-separated browser `origins` allowed to call the API (https://app.example.org,http://localhost:8081), or * for any; empty: none")
	fs.StringVar(&e.TLSCert, "tls-cert", "", "PEM certificate chain `file`: with --tls-key, serve HTTP/2 and HTTP/1.1 over TLS on --addr (re-read when the file changes)")
	fs.StringVar(&e.TLSKey, "tls-key", "", "PEM private key `file` for --tls-cert")
}

// tlsEnabled reports whether the API port serves TLS.
func (e edgeFlags) tlsEnabled() bool { return e.TLSCert != "" && e.TLSKey != "" }

// origins lists the configured CORS origins, trimmed, empty ones dropped.
func (e edgeFlags) origins() []string {
	var out []string
	for _, o := range strings.Split(e.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// problems lists every problem with the edge settings.
func (e edgeFlags) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, o := range e.origins() {
		if err := checkOrigin(o); err != nil {
			add("--cors-origins/MTM_CORS_ORIGINS %q: %v", o, err)
		}
	}
	switch {
	case e.TLSCert != "" && e.TLSKey == "":
		add("--tls-cert/MTM_TLS_CERT is set without --tls-key/MTM_TLS_KEY")
	case e.TLSKey != "" && e.TLSCert == "":
		add("--tls-key/MTM_TLS_KEY is set without --tls-cert/MTM_TLS_CERT")
	}
	readable := true
	for _, f := range []struct{ flag, path string }{{"--tls-cert/MTM_TLS_CERT", e.TLSCert}, {"--tls-key/MTM_TLS_KEY", e.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			readable = false
			add("%s %q: cannot read: %v", f.flag, f.path, unwrapPathError(err))
		}
	}
	if e.tlsEnabled() && readable {
		if _, err := tls.LoadX509KeyPair(e.TLSCert, e.TLSKey); err != nil {
			add("--tls-cert/--tls-key %q, %q: not a PEM certificate and its private key: %v", e.TLSCert, e.TLSKey, err)
		}
	}
	return out
}

// checkOrigin accepts "*" or a browser origin: http or https, a host, an
// optional port, nothing else (no path, query or credentials).
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil {
		return errors.New("not a URL origin like https://app.example.org")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("missing host")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return errors.New("an origin is scheme://host[:port], without path, query or credentials")
	case strings.Contains(u.Host, "*"):
		return errors.New("wildcards are not supported; list each origin, or * for any")
	}
	return nil
}

// unwrapPathError drops the path that os errors repeat.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
