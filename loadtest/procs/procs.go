// Package procs starts the servers a load test runs against — mtmd and
// redis-server — as child processes on loopback ports, waits until they
// serve, reads the CPU time they use, and stops them. Running the server in
// its own process keeps the load generator's work out of the server's CPU
// figures.
package procs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one running child process.
type Process struct {
	Name   string
	cmd    *exec.Cmd
	logf   *os.File
	exited chan struct{}
	err    error // set before exited closes
}

// start runs bin with args in dir, output to dir/<name>.log.
func start(name, bin, dir string, args []string, env []string) (*Process, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("procs: %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// The child dies with the load generator, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("procs: starting %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, logf: logf, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// CPUTime is the user plus system CPU time the process has used so far,
// from /proc/<pid>/stat (Linux), in 10 ms ticks.
func (p *Process) CPUTime() (time.Duration, error) { return CPUTimeOf(p.PID()) }

// SelfCPUTime is the CPU time this process has used so far (the load
// generator's own, for loadtest.Runner.ClientCPU).
func SelfCPUTime() (time.Duration, error) { return CPUTimeOf(os.Getpid()) }

// CPUTimeOf reads the CPU time of any process by pid.
func CPUTimeOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("procs.CPUTime: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("procs.CPUTime: unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("procs.CPUTime: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("procs.CPUTime: %w", err)
	}
	const userHZ = 100 // /proc reports in USER_HZ, 100 on Linux
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop asks the process to end (SIGTERM), waits up to grace, then kills it.
func (p *Process) Stop(grace time.Duration) error {
	defer p.logf.Close()
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("procs: %s did not stop within %s; killed", p.Name, grace)
	}
}

// LogTail returns the last lines of the process's output, for errors.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.logf.Name())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-15, 0):], "\n")
}

// waitUntil polls ready every 20 ms until it returns nil, the process
// exits, or timeout passes.
func (p *Process) waitUntil(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p.Exited() {
			return fmt.Errorf("procs: %s exited at start: %v\n%s", p.Name, p.err, p.LogTail())
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("procs: %s not ready within %s: %v\n%s", p.Name, timeout, last, p.LogTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("procs.FreePort: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
