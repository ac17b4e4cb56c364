package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// certCheckInterval bounds how often a handshake looks at the certificate
// files for a renewal.
const certCheckInterval = time.Second

// certReloader serves a certificate from files and picks up a renewal
// (certbot, cert-manager) without a restart: at most once per
// certCheckInterval a handshake compares the files' modification times and
// sizes with those last loaded and, when they changed, loads them again. A
// renewal read half-written (a key that does not match the certificate yet)
// keeps the old certificate and is retried at the next check.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of certFile, keyFile when cert was loaded
	checked time.Time
}

// fileStamp is what tells a rewritten file from the one loaded.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// newCertReloader loads the certificate and key, or fails.
func newCertReloader(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: now}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	r.checked = now()
	return r, nil
}

// load reads both files; r.mu is held or r is not shared yet.
func (r *certReloader) load() error {
	var stamp [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		s, err := stampOf(f)
		if err != nil {
			return err
		}
		stamp[i] = s
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < certCheckInterval {
		return r.cert, nil
	}
	r.checked = now
	changed := false
	for i, f := range []string{r.certFile, r.keyFile} {
		s, err := stampOf(f)
		if err != nil {
			r.log.Warn("TLS certificate check failed; serving the loaded certificate", "file", f, "error", err.Error())
			return r.cert, nil
		}
		if !s.mod.Equal(r.stamp[i].mod) || s.size != r.stamp[i].size {
			changed = true
		}
	}
	if !changed {
		return r.cert, nil
	}
	if err := r.load(); err != nil { // leaves r.cert and r.stamp as they were
		r.log.Warn("TLS certificate changed but does not load yet; serving the previous one", "error", err.Error())
		return r.cert, nil
	}
	r.log.Info("TLS certificate reloaded", "not_after", r.cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"subject", r.cert.Leaf.Subject.String())
	return r.cert, nil
}

// tlsListener wraps ln in TLS when the flags ask for it: HTTP/2 and
// HTTP/1.1 negotiated by ALPN, TLS 1.2 at least, the certificate from
// certReloader. Without TLS flags it returns ln.
func tlsListener(e edgeFlags, ln net.Listener, log *slog.Logger, now func() time.Time) (net.Listener, error) {
	if !e.tlsEnabled() {
		return ln, nil
	}
	r, err := newCertReloader(e.TLSCert, e.TLSKey, log, now)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.GetCertificate,
	}), nil
}
