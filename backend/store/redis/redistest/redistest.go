// Package redistest starts private redis-server processes for tests: a
// single node or a three-primary Cluster (optionally with one replica per
// primary), each on free loopback ports in the test's temporary directory
// (never the shared port 6379), torn down when the test ends.
//
// When redis-server is not installed the test fails with a hint (.ci/run
// installs it with apt-get install redis-server); set MTM_SKIP_REDIS=1 to
// skip instead.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Option changes how StartServer configures redis-server.
type Option func(*config)

type config struct {
	appendOnly  bool
	appendFsync string
	replicas    bool
	nodeTimeout time.Duration
}

// AppendOnly turns the append-only file on or off (default off).
func AppendOnly(on bool) Option { return func(c *config) { c.appendOnly = on } }

// AppendFsync sets appendfsync: "always", "everysec" (default) or "no".
func AppendFsync(policy string) Option { return func(c *config) { c.appendFsync = policy } }

// WithReplicas gives every Cluster primary one replica (StartCluster only).
// Replicas may fail over however long they were cut off from their primary
// (cluster-replica-validity-factor 0), so a test can pause one and still
// watch it be promoted.
func WithReplicas() Option { return func(c *config) { c.replicas = true } }

// NodeTimeout sets cluster-node-timeout (StartCluster only; default 5s):
// how long a primary must be unreachable before its replica takes over.
func NodeTimeout(d time.Duration) Option { return func(c *config) { c.nodeTimeout = d } }

// Server is one private redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	addr string
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
	log    *syncBuffer
}

// syncBuffer collects the server's output; the process writes while the
// test may read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Addr is the server's host:port on loopback.
func (s *Server) Addr() string { return s.addr }

// Dir is the server's working directory (RDB, AOF, nodes.conf).
func (s *Server) Dir() string { return s.dir }

// binary returns the redis-server path or ends the test.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MTM_SKIP_REDIS") == "1" {
			t.Skip("redis-server not installed and MTM_SKIP_REDIS=1: skipping Redis tests")
		}
		t.Fatal("redis-server not found in PATH: .ci/run installs it (apt-get install redis-server); set MTM_SKIP_REDIS=1 to skip the Redis tests")
	}
	return bin
}

// StartServer starts a single redis-server on a free loopback port in a
// directory under t.TempDir(), waits until it answers PING, and kills it
// when the test ends. It returns the address and a handle.
func StartServer(t testing.TB, opts ...Option) (string, *Server) {
	t.Helper()
	c := config{appendFsync: "everysec"}
	for _, o := range opts {
		o(&c)
	}
	bin := binary(t)
	dir := t.TempDir()
	yesno := map[bool]string{true: "yes", false: "no"}
	var lastErr error
	for range 5 {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s := &Server{t: t, bin: bin, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, args: []string{
			"--appendonly", yesno[c.appendOnly], "--appendfsync", c.appendFsync,
		}}
		s.args = append(baseArgs(port, dir), s.args...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.stop)
			return s.addr, s
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return "", nil
}

func baseArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes",
		"--logfile", "", "--maxmemory-policy", "noeviction",
	}
}

// start runs redis-server and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.log, s.exited = cmd, log, exited
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", lastLines(log.String()))
		default:
		}
		if ping(s.addr) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	s.cmd = nil
	return fmt.Errorf("redis-server on %s did not answer within 15s: %s", s.addr, lastLines(log.String()))
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// Kill ends the server with SIGKILL, as a crash would, and waits until
// it is gone. Writes it acknowledged are on disk only as far as its
// appendfsync setting promises.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: it keeps its sockets but answers
// nothing, reads nothing from its primary and sends nothing to its
// replicas, as a stalled machine would, until Resume.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %s is not running", s.addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %s: %v", sig, err)
	}
}

// Restart starts the server again on the same port and directory (after
// Kill), so that it loads its AOF/RDB, and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) stop() {
	s.Kill()
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// freePort returns a free loopback TCP port other than 6379; with
// clusterBus it also checks port+10000, which Cluster uses for its bus.
func freePort(clusterBus bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port == 6379 || port == 16379 {
			continue
		}
		if clusterBus {
			if port+10000 > 65535 {
				continue
			}
			b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
			if err != nil {
				continue
			}
			_ = b.Close()
		}
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port found")
}

// Cluster is a three-primary Redis Cluster of private servers.
type Cluster struct {
	// Nodes are the primaries at start, in slot order.
	Nodes []*Server
	// Replicas[i] replicates Nodes[i] at start (WithReplicas only).
	Replicas []*Server
}

// Addrs are the nodes' addresses, to seed a cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.addr
	}
	return out
}

// StartCluster starts three cluster-enabled redis-servers, splits the
// 16384 slots between them, joins them with CLUSTER MEET and waits until
// every node reports cluster_state:ok. With WithReplicas it also starts one
// replica per primary and waits until each is in sync. Everything is torn
// down when the test ends.
func StartCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	c := config{appendFsync: "everysec", nodeTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	bin := binary(t)
	yesno := map[bool]string{true: "yes", false: "no"}
	cl := &Cluster{}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	n := len(ranges)
	if c.replicas {
		n *= 2
	}
	var all []*Server
	for i := range n {
		dir := filepath.Join(t.TempDir(), "node"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var started *Server
		var lastErr error
		for range 5 {
			port, err := freePort(true)
			if err != nil {
				t.Fatalf("redistest: %v", err)
			}
			s := &Server{t: t, bin: bin, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir}
			s.args = append(baseArgs(port, dir),
				"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.FormatInt(c.nodeTimeout.Milliseconds(), 10),
				"--cluster-replica-validity-factor", "0",
				"--appendonly", yesno[c.appendOnly], "--appendfsync", c.appendFsync)
			if lastErr = s.start(); lastErr == nil {
				started = s
				break
			}
		}
		if started == nil {
			t.Fatalf("redistest: cluster node %d did not start: %v", i, lastErr)
		}
		t.Cleanup(started.stop)
		all = append(all, started)
	}
	cl.Nodes, cl.Replicas = all[:len(ranges)], all[len(ranges):]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*redis.Client, len(all))
	for i, n := range all {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.addr})
		defer clients[i].Close()
	}
	for i, r := range ranges {
		if err := clients[i].ClusterAddSlotsRange(ctx, r[0], r[1]).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE on %s: %v", cl.Nodes[i].addr, err)
		}
	}
	for _, n := range all[1:] {
		host, port, _ := net.SplitHostPort(n.addr)
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET %s: %v", n.addr, err)
		}
	}
	known := "cluster_known_nodes:" + strconv.Itoa(len(all))
	waitFor(ctx, t, "every node to know the others", func() bool {
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, known) {
				return false
			}
		}
		return true
	})
	for i, r := range cl.Replicas {
		id, err := clients[i].ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatalf("redistest: CLUSTER MYID on %s: %v", cl.Nodes[i].addr, err)
		}
		if err := clients[len(ranges)+i].ClusterReplicate(ctx, id).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER REPLICATE on %s: %v", r.addr, err)
		}
	}
	waitFor(ctx, t, "cluster_state:ok with every replica in sync", func() bool {
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return false
			}
		}
		for i := range cl.Replicas {
			info, err := clients[len(ranges)+i].Info(ctx, "replication").Result()
			if err != nil || !strings.Contains(info, "master_link_status:up") {
				return false
			}
		}
		return true
	})
	return cl
}

// waitFor polls cond every 50ms until it holds, failing the test when ctx
// ends first.
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: gave up waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartSentinel starts one redis-sentinel on a free loopback port that
// monitors the primary at primaryAddr under masterName (quorum 1), waits
// until it reports the primary's address, and stops it when the test ends.
// It returns the sentinel's address.
func StartSentinel(t testing.TB, masterName, primaryAddr string) string {
	t.Helper()
	bin := binary(t)
	host, port, err := net.SplitHostPort(primaryAddr)
	if err != nil {
		t.Fatalf("redistest: primary address: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		sport, err := freePort(false)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n",
			sport, dir, masterName, host, port, masterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{t: t, bin: bin, addr: "127.0.0.1:" + strconv.Itoa(sport), dir: dir, args: []string{conf, "--sentinel"}}
		if lastErr = s.start(); lastErr != nil {
			continue
		}
		t.Cleanup(s.stop)
		c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for {
			if addr, err := c.GetMasterAddrByName(ctx, masterName).Result(); err == nil && len(addr) == 2 {
				return s.addr
			}
			select {
			case <-ctx.Done():
				t.Fatalf("redistest: sentinel on %s does not report %s", s.addr, masterName)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	t.Fatalf("redistest: redis-sentinel did not start: %v", lastErr)
	return ""
}

// CPUTime is the user and system CPU time the Redis server behind c has
// used (INFO cpu), for benchmarks that count Redis's share of the work.
func CPUTime(tb testing.TB, c redis.UniversalClient) time.Duration {
	tb.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					tb.Fatal(err)
				}
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}
