package main

// Test harness: the real gateway and demo server (built once by TestMain),
// a test MCP server that is this test binary re-executed (for sampling,
// elicitation, roots and logs, mounted per-session so the gateway relays
// its requests to mcp-chat), mcp-chat itself both built as a binary and run
// in-process, and buffers to wait on what it prints. Tests wait on events
// (lines printed, requests received), never on sleeps.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binaries TestMain builds.
var gatewayBin, demoBin, chatBin string

// testServerEnv, set in the environment, makes the test binary serve the
// test MCP server on stdio instead of running tests.
const testServerEnv = "MCP_CHAT_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(testServerEnv) != "" {
		os.Exit(serveTestServer())
	}
	dir, err := os.MkdirTemp("", "mcp-chat-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin, demoBin, chatBin = filepath.Join(dir, "gateway"), filepath.Join(dir, "demo"), filepath.Join(dir, "mcp-chat")
	for bin, pkg := range map[string]string{gatewayBin: "../gateway", demoBin: "../demo", chatBin: "."} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitTimeout bounds every wait for an event.
const waitTimeout = 30 * time.Second

// watchBuffer is a buffer that is safe for concurrent use and can be
// waited on.
type watchBuffer struct {
	mu      sync.Mutex // guards the fields below
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{})} }

func (b *watchBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *watchBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer holds s.
func (b *watchBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok, changed := strings.Contains(b.buf.String(), s), b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %q in:\n%s", s, b.String())
		}
	}
}

// chatRun is mcp-chat running in-process.
type chatRun struct {
	stdout, stderr *watchBuffer
	stdin          *io.PipeWriter
	interrupts     chan os.Signal
	dir            string   // the working directory, offered as a root
	done           chan int // the exit code
}

// startChat runs mcp-chat in-process with args and environment vars.
// Lines for stdin are written with send; cleanup closes stdin and waits
// for the exit.
func startChat(t *testing.T, vars map[string]string, args ...string) *chatRun {
	t.Helper()
	pr, pw := io.Pipe()
	r := &chatRun{stdout: newWatchBuffer(), stderr: newWatchBuffer(), stdin: pw,
		interrupts: make(chan os.Signal, 1), done: make(chan int, 1), dir: t.TempDir()}
	e := &env{
		stdin: pr, stdout: r.stdout, stderr: r.stderr,
		getenv:     func(k string) string { return vars[k] },
		interrupts: r.interrupts,
		dir:        r.dir,
	}
	go func() { r.done <- run(context.Background(), args, e) }()
	t.Cleanup(func() {
		pw.Close()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Errorf("mcp-chat did not exit; stderr:\n%s", r.stderr)
		}
	})
	return r
}

// send writes a line to stdin.
func (r *chatRun) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(r.stdin, line+"\n"); err != nil {
		t.Fatalf("writing to stdin: %v", err)
	}
}

// wait closes stdin and returns the exit code.
func (r *chatRun) wait(t *testing.T) int {
	t.Helper()
	r.stdin.Close()
	return r.exit(t)
}

// exit returns the exit code.
func (r *chatRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(waitTimeout):
		t.Fatalf("mcp-chat did not exit; stderr:\n%s", r.stderr)
		return -1
	}
}

// runChat runs mcp-chat in-process to its end with stdin and returns the
// exit code, stdout and stderr.
func runChat(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	r := startChat(t, vars, args...)
	go func() {
		io.WriteString(r.stdin, stdin)
		r.stdin.Close()
	}()
	code := r.exit(t)
	return code, r.stdout.String(), r.stderr.String()
}

// runBinary runs the built mcp-chat with args and environment vars (and
// PATH and HOME) and returns the exit code, stdout and stderr.
func runBinary(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chatBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("running mcp-chat: %v\nstderr:\n%s", err, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

// gatewayProc is a running gateway binary.
type gatewayProc struct {
	base string // http://127.0.0.1:port
	log  *watchBuffer
}

func (g *gatewayProc) mcpURL() string { return g.base + "/mcp" }
func (g *gatewayProc) sseURL() string { return g.base + "/sse" }

var listeningRE = regexp.MustCompile(`msg="gateway listening" addr=(\S+)`)

// gatewayConfig is the parts of a gateway config that tests vary.
type gatewayConfig struct {
	listen    string // default 127.0.0.1:0
	publicURL string
	testSrv   bool   // mount the test server as "tsrv", per-session
	auth      string // YAML of the auth section, indented two spaces
}

// startGateway writes a config that mounts the demo server as the stdio
// upstream "demo" (and the test server as "tsrv" if asked), starts the
// gateway binary, and waits until it listens and its upstreams are
// connected. Cleanup stops it with SIGTERM and waits for it.
func startGateway(t *testing.T, gc gatewayConfig) *gatewayProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if gc.listen == "" {
		gc.listen = "127.0.0.1:0"
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: %s\n", gc.listen)
	if gc.publicURL != "" {
		fmt.Fprintf(&cfg, "public_url: %s\n", gc.publicURL)
	}
	fmt.Fprintf(&cfg, "log: {level: info}\nupstreams:\n  - name: demo\n    transport: stdio\n    command: %s\n    args: [--stdio]\n", demoBin)
	upstreams := []string{"demo"}
	if gc.testSrv {
		// GORACE: a race-enabled binary sleeps a second before exiting,
		// which every gateway shutdown would wait out.
		fmt.Fprintf(&cfg, "  - name: tsrv\n    transport: stdio\n    command: %s\n    env: {%s: \"1\", GORACE: \"atexit_sleep_ms=0\"}\n    sharing: per-session\n", self, testServerEnv)
		upstreams = append(upstreams, "tsrv")
	}
	if gc.auth != "" {
		fmt.Fprintf(&cfg, "auth:\n%s\n", gc.auth)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(gatewayBin, "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	g := &gatewayProc{log: newWatchBuffer()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.log.Write(append(sc.Bytes(), '\n'))
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "gateway: %s\n", sc.Text())
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-copied // Wait must come after the last read of the pipe
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(waitTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("the gateway did not stop on SIGTERM")
		}
	})

	g.log.waitFor(t, `msg="gateway listening"`)
	g.base = "http://" + listeningRE.FindStringSubmatch(g.log.String())[1]
	for _, u := range upstreams {
		g.log.waitFor(t, `msg="upstream connected" upstream=`+u)
	}
	return g
}
