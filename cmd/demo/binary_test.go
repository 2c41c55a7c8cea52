package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestBinary builds the demo command and talks to it as its users do: over
// stdio as a child process, and over HTTP at the address it logs.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("stdio", func(t *testing.T) {
		cs, p := startStdio(t, bin, "--stdio", "--name", "copy-a")
		if got := cs.InitializeResult().ServerInfo.Name; got != "copy-a" {
			t.Errorf("serverInfo.name = %q, want %q", got, "copy-a")
		}
		callText(t, cs, "multiply", map[string]any{"a": 2, "b": 21}, "42")
		callText(t, cs, "get_alerts", map[string]any{"state": "ok"}, "Event: Tornado Watch")
		closeStdio(t, cs, p)
		if strings.Contains(p.log.String(), "{\"jsonrpc\"") {
			t.Errorf("protocol traffic on stderr:\n%s", p.log.String())
		}
	})

	t.Run("stdio signal during call", func(t *testing.T) {
		handler, progress := progressRecorder()
		cs, p := startStdioWith(t, &mcp.ClientOptions{ProgressNotificationHandler: handler}, bin, "--stdio")
		ctx := testContext(t)
		succeeded := make(chan bool, 1)
		go func() {
			params := &mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": maxCount, "delay_ms": 100}}
			params.SetProgressToken("t")
			res, err := cs.CallTool(ctx, params)
			succeeded <- err == nil && !res.IsError
		}()
		select {
		case <-progress: // the server is inside the handler
		case <-ctx.Done():
			t.Fatal("no progress from slow_count")
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		sessionEnded := make(chan error, 1)
		go func() { sessionEnded <- cs.Wait() }()
		select {
		case <-sessionEnded:
		case <-ctx.Done():
			t.Fatal("demo kept running after SIGTERM during a call")
		}
		// Depending on timing the call fails, or gets the tool error the
		// cancelled handler returned; it must not succeed.
		if <-succeeded {
			t.Error("slow_count succeeded although the server was stopped")
		}
		closeStdio(t, cs, p)
	})

	t.Run("http", func(t *testing.T) {
		p := startProcess(t, bin, "--http", "127.0.0.1:0", "--name", "copy-b")
		addr := p.log.listenAddr(t)
		streamable := connectHTTP(t, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", MaxRetries: -1})
		if got := streamable.InitializeResult().ServerInfo.Name; got != "copy-b" {
			t.Errorf("serverInfo.name = %q, want %q", got, "copy-b")
		}
		callText(t, streamable, "save_memory", map[string]any{"text": "Saved over Streamable HTTP"}, "Saved memory 1.")
		sse := connectHTTP(t, &mcp.SSEClientTransport{Endpoint: "http://" + addr + "/sse"})
		callText(t, sse, "search_memory", map[string]any{"query": "streamable"}, "[1] Saved over Streamable HTTP")
		// The SSE stream is still open: shutdown must end it, not wait for it.
		p.stop(t, syscall.SIGTERM, 0)
	})

	t.Run("http stateless", func(t *testing.T) {
		p := startProcess(t, bin, "--http", "127.0.0.1:0", "--stateless")
		cs := connectHTTP(t, &mcp.StreamableClientTransport{Endpoint: "http://" + p.log.listenAddr(t) + "/mcp", MaxRetries: -1})
		callText(t, cs, "multiply", map[string]any{"a": 1.5, "b": 4}, "6")
		p.stop(t, syscall.SIGINT, 0)
	})

	t.Run("http cannot listen", func(t *testing.T) {
		busy := busyAddr(t)
		p := startProcess(t, bin, "--http", busy)
		p.wait(t, 1)
	})

	t.Run("stdio and http share memory", func(t *testing.T) {
		cs, p := startStdio(t, bin, "--stdio", "--http", "127.0.0.1:0")
		callText(t, cs, "save_memory", map[string]any{"text": "saved over stdio"}, "Saved memory 1.")
		httpCS := connectHTTP(t, &mcp.StreamableClientTransport{Endpoint: "http://" + p.log.listenAddr(t) + "/mcp", MaxRetries: -1})
		callText(t, httpCS, "search_memory", map[string]any{"query": "STDIO"}, "[1] saved over stdio")
		closeStdio(t, cs, p) // closing stdin ends HTTP serving too
	})

	t.Run("stdio survives http failure", func(t *testing.T) {
		busy := busyAddr(t)
		cs, p := startStdio(t, bin, "--stdio", "--http", busy)
		callText(t, cs, "multiply", map[string]any{"a": 3, "b": 3}, "9")
		closeStdio(t, cs, p)
		if !strings.Contains(p.log.String(), `msg="http unavailable"`) {
			t.Errorf("stderr does not report the failed listen:\n%s", p.log.String())
		}
	})
}

// busyAddr returns an address that something is already listening on.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any, want string) {
	t.Helper()
	res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): %v", tool, args, err)
	}
	if got := textOf(res); res.IsError || !strings.Contains(got, want) {
		t.Fatalf("%s(%v) = %q (isError %t), want text containing %q", tool, args, got, res.IsError, want)
	}
}

func connectHTTP(t *testing.T, transport mcp.Transport) *mcp.ClientSession {
	t.Helper()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil).Connect(testContext(t), transport, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// process is a running demo binary.
type process struct {
	cmd    *exec.Cmd
	log    *stderrLog
	exited chan struct{} // closed once cmd.Wait has returned; nil for stdio children
}

// startProcess starts bin with args, for HTTP use. Cleanup kills it if the
// test has not already stopped it.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	log := attachStderr(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	log.started()
	p := &process{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		log.finish(t)
	})
	return p
}

// stop sends sig and checks that the process exits with wantCode.
func (p *process) stop(t *testing.T, sig os.Signal, wantCode int) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling: %v", err)
	}
	p.wait(t, wantCode)
}

// wait waits for the process to exit by itself with wantCode.
func (p *process) wait(t *testing.T, wantCode int) {
	t.Helper()
	select {
	case <-p.exited:
	case <-testContext(t).Done():
		t.Fatal("demo did not exit")
	}
	if got := p.cmd.ProcessState.ExitCode(); got != wantCode {
		t.Errorf("demo exit code = %d, want %d; stderr:\n%s", got, wantCode, p.log.String())
	}
}

// startStdio starts bin as a stdio child through the SDK's CommandTransport.
// Cleanup closes the session, which closes stdin and reaps the child.
func startStdio(t *testing.T, bin string, args ...string) (*mcp.ClientSession, *process) {
	t.Helper()
	return startStdioWith(t, nil, bin, args...)
}

func startStdioWith(t *testing.T, opts *mcp.ClientOptions, bin string, args ...string) (*mcp.ClientSession, *process) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	log := attachStderr(t, cmd)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts).
		Connect(testContext(t), &mcp.CommandTransport{Command: cmd}, nil)
	log.started()
	if err != nil {
		log.finish(t)
		t.Fatalf("connecting to %s over stdio: %v", bin, err)
	}
	t.Cleanup(func() {
		cs.Close()
		log.finish(t)
	})
	return cs, &process{cmd: cmd, log: log}
}

// closeStdio closes the session, which closes the child's stdin, and checks
// that the child then exits 0.
func closeStdio(t *testing.T, cs *mcp.ClientSession, p *process) {
	t.Helper()
	cs.Close()
	if p.cmd.ProcessState == nil {
		t.Fatal("child not reaped after Close")
	}
	if got := p.cmd.ProcessState.ExitCode(); got != 0 {
		t.Errorf("exit code after stdin closed = %d, want 0; stderr:\n%s", got, p.log.String())
	}
}

// parseListening returns the address from the line run logs once HTTP is
// bound: "time=... level=INFO msg=listening addr=127.0.0.1:43817".
func parseListening(line string) (addr string, ok bool) {
	_, rest, ok := strings.Cut(line, " level=INFO msg=listening addr=")
	if !ok {
		return "", false
	}
	addr, _, _ = strings.Cut(rest, " ")
	return addr, addr != ""
}

// stderrLog collects a child's stderr through a pipe of its own, so the test
// can read lines as they come (for the listening address) and show them all
// when something fails.
type stderrLog struct {
	r, w *os.File
	addr chan string   // the listening address, once
	done chan struct{} // closed when the child's stderr is at EOF

	mu    sync.Mutex // guards lines
	lines []string
}

func attachStderr(t *testing.T, cmd *exec.Cmd) *stderrLog {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	l := &stderrLog{r: r, w: w, addr: make(chan string, 1), done: make(chan struct{})}
	go l.read()
	return l
}

func (l *stderrLog) read() {
	defer close(l.done)
	sc := bufio.NewScanner(l.r)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
		if addr, ok := parseListening(line); ok {
			select {
			case l.addr <- addr:
			default:
			}
		}
	}
}

// started drops the parent's copy of the write end, so the reader sees EOF
// when the child exits.
func (l *stderrLog) started() { l.w.Close() }

// finish waits for the child's stderr to end and logs it if the test failed.
func (l *stderrLog) finish(t *testing.T) {
	<-l.done
	l.r.Close()
	if t.Failed() {
		t.Logf("demo stderr:\n%s", l.String())
	}
}

func (l *stderrLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// listenAddr waits for the listening line.
func (l *stderrLog) listenAddr(t *testing.T) string {
	t.Helper()
	select {
	case addr := <-l.addr:
		return addr
	case <-l.done:
		t.Fatalf("demo exited without listening; stderr:\n%s", l.String())
	case <-testContext(t).Done():
		t.Fatalf("demo did not log its address; stderr:\n%s", l.String())
	}
	return ""
}
