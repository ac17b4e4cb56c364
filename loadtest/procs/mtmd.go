package procs

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// BuildMTMD compiles ./cmd/mtmd of the module rooted at moduleDir into
// outDir and returns the binary's path. It needs the go command.
func BuildMTMD(ctx context.Context, moduleDir, outDir string) (string, error) {
	out := filepath.Join(outDir, "mtmd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/mtmd")
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("procs.BuildMTMD: %w\n%s", err, b)
	}
	return out, nil
}

// MTMD is a running mtmd.
type MTMD struct {
	*Process
	// URL is the API's base URL, e.g. http://127.0.0.1:40123.
	URL string
}

// MTMDOptions say how to run mtmd.
type MTMDOptions struct {
	Binary   string
	Name     string // process name in logs and errors, e.g. "mtmd-a"
	DataDir  string // data dir (bolt file, keys, audit archive)
	KeyDir   string // signing keys; instances of one deployment share them
	RedisURL string // "" for the embedded store
	LogLevel string // "" means info
	// Extra flags, appended last.
	Extra []string
}

// StartMTMD starts mtmd on a free loopback port with --bench-endpoints
// (the baseline RPC), no admin port and a one-hour access-token lifetime,
// and returns once the API answers.
func StartMTMD(ctx context.Context, o MTMDOptions) (*MTMD, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("procs.StartMTMD: %w", err)
	}
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--addr", addr, "--admin-addr", "off", "--data-dir", o.DataDir,
		"--bench-endpoints", "--access-ttl", "1h", "--log-format", "json", "--log-level", level,
	}
	if o.KeyDir != "" {
		args = append(args, "--signing-key-dir", o.KeyDir)
	}
	if o.RedisURL != "" {
		args = append(args, "--redis-url", o.RedisURL)
	}
	args = append(args, o.Extra...)
	name := o.Name
	if name == "" {
		name = "mtmd"
	}
	p, err := start(name, o.Binary, o.DataDir, args, nil)
	if err != nil {
		return nil, err
	}
	m := &MTMD{Process: p, URL: "http://" + addr}
	client := &http.Client{Timeout: time.Second}
	err = p.waitUntil(ctx, 30*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/.well-known/jwks.json", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("JWKS answered %s", res.Status)
		}
		return nil
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return m, nil
}
