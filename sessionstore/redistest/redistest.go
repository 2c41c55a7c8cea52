// Package redistest starts real redis-server processes for tests, so that
// code which talks to Redis is tested against Redis itself rather than a
// mock that agrees with whatever the code assumes.
//
// Each [Start] runs its own server on a free loopback port, with persistence
// off and its working directory in t.TempDir, and kills it when the test
// ends. [Server.Stop] and [Server.Restart] take it down and bring it back on
// the same address, for tests of what callers see while Redis is away.
//
// redis-server must be on PATH. A missing binary fails the test, with a hint
// on how to install it (apt-get install redis-server), because a test that
// silently skips in CI proves nothing. Setting MCPGW_SKIP_REDIS=1 turns that
// failure into a skip, for machines where Redis cannot be installed.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SkipEnv is the environment variable that, set to "1", makes Start skip the
// test instead of failing it when redis-server is not installed.
const SkipEnv = "MCPGW_SKIP_REDIS"

// readyTimeout bounds how long Start and Restart wait for the server to log
// that it accepts connections. A healthy server needs milliseconds; the bound
// only keeps a broken one from hanging the test.
const readyTimeout = 15 * time.Second

// readyLine is what redis-server logs once it accepts connections (Redis 6
// and 7 both log it, 7 with " tcp" after it).
const readyLine = "Ready to accept connections"

// bindAttempts is how often Start tries another port when the one it picked
// was taken between picking and binding it.
const bindAttempts = 5

// Server is one redis-server process started by Start. Its methods must be
// called from the goroutine running the test, as they may call t.Fatal.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string

	mu   sync.Mutex // guards proc
	proc *process   // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	logs   *logTail
}

// Start starts a redis-server on a free loopback port and returns once it
// accepts connections. The server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("redistest: redis-server not found on PATH and %s=1: skipping", SkipEnv)
		}
		t.Fatalf("redistest: redis-server not found on PATH (%v). Install it (Debian/Ubuntu: apt-get install redis-server), or set %s=1 to skip the tests that need it", err, SkipEnv)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)

	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: picking a port: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := s.start()
		if err == nil {
			s.setProc(p)
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as a redis:// URL, the form a gateway
// config takes.
func (s *Server) URL() string { return "redis://" + s.addr }

// Stop kills the server and waits for it to exit, so that new connections to
// Addr are refused and open ones are broken, as when Redis crashes. Stopping
// a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart starts the server again on the same address, empty (it keeps no
// data), and returns once it accepts connections. It stops the server first
// if it is running.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	p, err := s.start()
	if err != nil {
		s.t.Fatalf("redistest: restarting: %v", err)
	}
	s.setProc(p)
}

func (s *Server) setProc(p *process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = p
}

// errPortTaken reports that redis-server could not bind its port.
var errPortTaken = errors.New("port taken")

// start runs redis-server on s.addr and waits until it logs that it is ready,
// or exits, or readyTimeout passes.
func (s *Server) start() (*process, error) {
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command(s.bin,
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "notice",
	)
	cmd.Env = []string{} // an explicit, empty environment
	cmd.Dir = s.dir
	setDeathSignal(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout // the same pipe: one log to read
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", s.bin, err)
	}

	p := &process{cmd: cmd, exited: make(chan struct{}), logs: &logTail{}}
	ready := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		// Read every line, not only up to the ready line: a pipe nobody
		// reads would block the server once its buffer fills.
		defer close(readerDone)
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			p.logs.add(line)
			if !signalled && strings.Contains(line, readyLine) {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		// Wait closes the pipe only after the reader is done with it.
		<-readerDone
		_ = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		logs := p.logs.String()
		if strings.Contains(logs, "Address already in use") {
			return nil, fmt.Errorf("redis-server on %s: %w", s.addr, errPortTaken)
		}
		return nil, fmt.Errorf("redis-server on %s exited before it was ready (%v); its log:\n%s", s.addr, cmd.ProcessState, logs)
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("redis-server on %s not ready after %v; its log:\n%s", s.addr, readyTimeout, p.logs.String())
	}
}

// freePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before redis-server binds it; Start then tries again.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail keeps the last lines of a server's log, for failure messages.
type logTail struct {
	mu    sync.Mutex // guards lines
	lines []string
}

const logTailLines = 50

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == logTailLines {
		l.lines = append(l.lines[:0], l.lines[1:]...)
	}
	l.lines = append(l.lines, line)
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
