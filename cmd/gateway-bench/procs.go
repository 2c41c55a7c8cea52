// Child processes: the demo server (over HTTP, or over stdio for a direct
// client) and redis-server. Each runs in its own process group with an
// explicit environment, and the kernel kills it if this process dies
// without stopping it (Linux). stop ends the whole group in stages:
// SIGTERM, a grace period, SIGKILL.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startTimeout bounds how long a child may take to say it is ready.
const startTimeout = 20 * time.Second

// stopGrace is how long a child has to exit after SIGTERM.
const stopGrace = 3 * time.Second

// childEnv is the environment of every child: enough to run, nothing more.
func childEnv() []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// buildDemo builds the demo server into dir. It runs inside the module, as
// `go run ./cmd/gateway-bench` and `go test` do.
func buildDemo(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "demo")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/mcpgw/gateway/cmd/demo")
	// Ctrl-C stops the compilers too, not only the go command.
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		signalGroup(cmd.Process.Pid, sigKill)
		return nil
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the demo server (run inside the module, or pass --demo): %w\n%s", err, out)
	}
	return bin, nil
}

// child is a running process started by this program.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed after Wait returned
	tail   *logTail      // its last lines of output, for error messages

	stopOnce sync.Once
}

// startChild starts bin with args and waits until a line of its output
// (stderr, and stdout unless stdin/stdout are the protocol) satisfies
// ready, which returns the value to hand back (e.g. the address it bound).
func startChild(name, bin string, args []string, ready func(line string) (string, bool)) (*child, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = cmd.Stderr // the same pipe: one log to read
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{}), tail: &logTail{}}
	found := make(chan string, 1)
	readerDone := make(chan struct{})
	go func() {
		// Read to the end: a pipe nobody reads would block the child.
		defer close(readerDone)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			c.tail.add(line)
			if !signalled {
				if v, ok := ready(line); ok {
					signalled = true
					found <- v
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		<-readerDone // Wait closes the pipe: read it to the end first
		cmd.Wait()
		close(c.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case v := <-found:
		return c, v, nil
	case <-c.exited:
		return nil, "", fmt.Errorf("%s exited before it was ready: %s", name, c.tail)
	case <-timer.C:
		c.stop()
		return nil, "", fmt.Errorf("%s was not ready after %s: %s", name, startTimeout, c.tail)
	}
}

// stop ends the child's process group: SIGTERM, then SIGKILL after
// stopGrace. It returns when the child has exited. It is idempotent.
func (c *child) stop() {
	c.stopOnce.Do(func() {
		select {
		case <-c.exited:
			return // reaped: its pid may belong to another process by now
		default:
		}
		signalGroup(c.cmd.Process.Pid, sigTerm)
		timer := time.NewTimer(stopGrace)
		defer timer.Stop()
		select {
		case <-c.exited:
		case <-timer.C:
			signalGroup(c.cmd.Process.Pid, sigKill)
			<-c.exited
		}
	})
}

// startDemoHTTP starts the demo server over HTTP on a free loopback port
// and returns it with its /mcp endpoint.
func startDemoHTTP(bin, name string, stateless bool) (*child, string, error) {
	args := []string{"--http", "127.0.0.1:0", "--name", name}
	if stateless {
		args = append(args, "--stateless")
	}
	// The demo logs "msg=listening addr=127.0.0.1:43817" once bound.
	c, addr, err := startChild("demo "+strings.Join(args, " "), bin, args, func(line string) (string, bool) {
		if !strings.Contains(line, "msg=listening") {
			return "", false
		}
		_, after, ok := strings.Cut(line, "addr=")
		if !ok {
			return "", false
		}
		return strings.Fields(after)[0], true
	})
	if err != nil {
		return nil, "", err
	}
	return c, "http://" + addr + "/mcp", nil
}

// stdioTarget connects directly to a demo server it spawns over stdio.
// One child serves one client, so all n clients share one session, as
// the gateway's clients share its one stdio child.
func stdioTarget(name, bin string, do func(context.Context, *mcp.ClientSession) error) *target {
	return &target{name: name, open: func(ctx context.Context, n int) ([]op, func(), error) {
		cmd := exec.Command(bin, "--stdio", "--name", "demo")
		cmd.Env = childEnv()
		cmd.SysProcAttr = sysProcAttr()
		c := mcp.NewClient(clientImpl, nil)
		cctx, cancel := context.WithTimeout(ctx, startTimeout)
		defer cancel()
		cs, err := c.Connect(cctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: stopGrace}, &mcp.ClientSessionOptions{ProtocolVersion: rev20251125})
		if err != nil {
			if cmd.Process != nil && cmd.ProcessState == nil {
				signalGroup(cmd.Process.Pid, sigKill)
			}
			return nil, nil, fmt.Errorf("%s: connecting to a demo stdio child: %w", name, err)
		}
		sessions := make([]*mcp.ClientSession, n)
		for i := range sessions {
			sessions[i] = cs
		}
		// Close closes stdin, waits, then signals; a child still around
		// (not yet reaped) afterwards gets its group killed.
		release := func() {
			cs.Close()
			if cmd.ProcessState == nil {
				signalGroup(cmd.Process.Pid, sigKill)
			}
		}
		return sessionOps(sessions, do), release, nil
	}}
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and returns it with its address.
func startRedis(bin, dir string) (*child, string, error) {
	var lastErr error
	for range 5 { // the free port may be taken before redis binds it
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--logfile", "", "--loglevel", "notice"}
		c, _, err := startChild("redis-server", bin, args, func(line string) (string, bool) {
			return "", strings.Contains(line, "Ready to accept connections")
		})
		if err == nil {
			return c, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
		lastErr = err
	}
	return nil, "", lastErr
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// logTail keeps a child's last lines of output.
type logTail struct {
	mu    sync.Mutex // guards lines
	lines []string
}

const tailLines = 10

func (t *logTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(no output)"
	}
	return strings.Join(t.lines, " | ")
}

// errNoRedis reports that redis-server is not on PATH.
var errNoRedis = errors.New("redis-server is not on PATH")
