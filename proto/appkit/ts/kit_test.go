// Package appkit runs the TypeScript app kit's tests (proto/appkit/ts/test,
// Node's own test runner) against a real mtmd, as part of go test ./...,
// and measures the kit's browser bundle against one generated from the
// full contract.
//
// It needs node (20 or later) and npm on PATH; without them the test is
// skipped, unless MTM_APPKIT_REQUIRED is set (CI sets it). npm ci installs
// the pinned packages of package-lock.json (from the npm cache when it has
// them).
package appkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/mtmapp/mtm/backend/auth"
	_ "github.com/mtmapp/mtm/proto/gen/mtm/v1" // registers the contract's descriptors
)

// accessTTL is the server's token lifetime in these tests: its minimum,
// so that test/expiry.test.ts sees a token expire.
const accessTTL = time.Minute

func TestAppKit(t *testing.T) {
	requireNode(t)
	npmCI(t, ".")

	bin := filepath.Join(t.TempDir(), "mtmd")
	run(t, "../../..", 5*time.Minute, "go", "build", "-o", bin, "./cmd/mtmd")
	url := startMTMD(t, bin)

	run(t, ".", 2*time.Minute, "node_modules/.bin/tsc", "-p", "tsconfig.json")
	run(t, ".", 2*time.Minute, "node_modules/.bin/tsc", "-p", "tsconfig.test.json")
	run(t, ".", time.Minute, "node", "scripts/build-tests.mjs")

	tests, _ := filepath.Glob("dist/test/*.test.cjs")
	cmd := exec.Command("node", append([]string{"--test", "--test-concurrency=8", "--test-reporter=spec"}, tests...)...)
	cmd.Env = append(os.Environ(),
		"MTM_URL="+url,
		"MTM_PHARMACIST_EMAIL=pharmacist@demo.mtm.test",
		"MTM_PHARMACIST_PASSWORD=demo-pharmacist-password",
		"MTM_ACCESS_TTL_SECONDS="+strconv.Itoa(int(accessTTL/time.Second)),
		"MTM_TOKEN_LEEWAY_SECONDS="+strconv.Itoa(int(auth.ClockLeeway/time.Second)),
	)
	out, err := runCmd(t, cmd, 10*time.Minute)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "surfaced as") || strings.HasPrefix(strings.TrimSpace(line), "ℹ") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}

// TestBundleSize compares the browser bundle of an app that uses the kit
// with the committed TypeScript (validation rules stripped) and with
// TypeScript generated from the full contract.
func TestBundleSize(t *testing.T) {
	requireNode(t)
	npmCI(t, ".")
	npmCI(t, "../../tools")
	full := t.TempDir()
	generateFull(t, full)

	type size struct{ Bytes, ValidateBytes int }
	measure := func(args ...string) size {
		out := run(t, ".", time.Minute, "node", append([]string{"scripts/size.mjs"}, args...)...)
		var s size
		if err := json.Unmarshal(bytes.TrimSpace(out), &s); err != nil {
			t.Fatalf("size.mjs: %v: %s", err, out)
		}
		return s
	}
	before := measure("--gen", full)
	after := measure()
	t.Logf("app bundle (minified, esbuild, browser): full contract %d bytes (buf.validate %d), as generated %d bytes (buf.validate %d): %.2f of before",
		before.Bytes, before.ValidateBytes, after.Bytes, after.ValidateBytes, float64(after.Bytes)/float64(before.Bytes))
	if after.ValidateBytes > 2048 {
		t.Errorf("buf.validate takes %d bytes of the bundle; only the Violations detail should be left", after.ValidateBytes)
	}
	if after.Bytes >= before.Bytes-before.ValidateBytes/2 {
		t.Errorf("the bundle (%d bytes) is not smaller than with the rules (%d bytes)", after.Bytes, before.Bytes)
	}
}

// generateFull writes TypeScript for the contract as it is (rules and
// buf.validate included) into dir, with the pinned protoc-gen-es, from the
// descriptors compiled into proto/gen.
func generateFull(t *testing.T, dir string) {
	t.Helper()
	var files []*descriptorpb.FileDescriptorProto
	var gen []string
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor)
		}
		files = append(files, protodesc.ToFileDescriptorProto(fd))
		if !strings.HasPrefix(fd.Path(), "google/protobuf/") {
			gen = append(gen, fd.Path())
		}
	}
	protoregistry.GlobalFiles.RangeFilesByPackage("mtm.v1", func(fd protoreflect.FileDescriptor) bool {
		add(fd)
		return true
	})
	req, err := proto.Marshal(&pluginpb.CodeGeneratorRequest{
		FileToGenerate: gen,
		Parameter:      proto.String("target=ts"),
		ProtoFile:      files,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("../../tools/node_modules/.bin/protoc-gen-es")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("protoc-gen-es: %v\n%s", err, stderr.String())
	}
	var res pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatalf("protoc-gen-es: %s", res.GetError())
	}
	for _, f := range res.File {
		p := filepath.Join(dir, f.GetName())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.GetContent()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The kit reads ErrorInfo from google/rpc; the full contract has none.
	src, err := os.ReadFile("../../gen/ts/google/rpc/error_details_pb.ts")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "google/rpc"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "google/rpc/error_details_pb.ts"), src, 0o644); err != nil {
		t.Fatal(err)
	}
}

func requireNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("MTM_APPKIT_REQUIRED") != "" {
				t.Fatalf("%s is not on PATH (MTM_APPKIT_REQUIRED is set)", tool)
			}
			t.Skipf("%s is not on PATH: the TypeScript app kit is not tested (install nodejs and npm)", tool)
		}
	}
}

// npmCI installs the locked packages of dir once per test binary.
var installed = map[string]bool{}

func npmCI(t *testing.T, dir string) {
	t.Helper()
	if installed[dir] {
		return
	}
	run(t, dir, 5*time.Minute, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	installed[dir] = true
}

// startMTMD starts mtmd with demo data on a free port and returns its URL;
// it is stopped when the test ends.
func startMTMD(t *testing.T, bin string) string {
	t.Helper()
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--demo", "--data-dir", data, "--addr", "127.0.0.1:0", "--admin-addr", "off",
		"--access-ttl", accessTTL.String(), "--shutdown-grace", "0s", "--shutdown-timeout", "2s")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="mtmd serving" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mtmd log:\n%s", log.String())
		}
	})
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("mtmd exited before serving")
		}
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("mtmd did not start within 30s")
	}
	return ""
}

func run(t *testing.T, dir string, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := runCmd(t, cmd, timeout)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runCmd(t *testing.T, cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), context.DeadlineExceeded
	}
}
