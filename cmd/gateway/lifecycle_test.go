package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	demoOnce sync.Once
	demoPath string
	demoErr  error
)

// TestMain removes the demo binary that buildDemo made.
func TestMain(m *testing.M) {
	code := m.Run()
	if demoPath != "" {
		os.RemoveAll(filepath.Dir(demoPath))
	}
	os.Exit(code)
}

// buildDemo builds the demo MCP server once per test binary.
func buildDemo(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gateway-cmd-test")
		if err != nil {
			demoErr = err
			return
		}
		demoPath = filepath.Join(dir, "demo")
		if out, err := exec.Command("go", "build", "-o", demoPath, "../demo").CombinedOutput(); err != nil {
			demoErr = err
			t.Logf("%s", out)
		}
	})
	if demoErr != nil {
		t.Fatalf("building demo: %v", demoErr)
	}
	return demoPath
}

// served is a gateway run in-process, with its log lines as events.
type served struct {
	base   string
	cancel context.CancelFunc // SIGTERM, in effect
	done   chan int           // the exit code
	exited chan struct{}      // closed when run has returned

	mu    sync.Mutex
	lines []string      // the log so far
	grew  chan struct{} // closed when a line is added
}

// serveConfig writes cfg and runs the gateway on it until the test ends.
func serveConfig(t *testing.T, dir, cfg string, args ...string) (*served, string) {
	t.Helper()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &served{cancel: cancel, done: make(chan int, 1), exited: make(chan struct{}), grew: make(chan struct{})}
	go func() {
		code := run(ctx, append([]string{"--config", path, "--listen", "127.0.0.1:0"}, args...), io.Discard, pw)
		s.done <- code
		close(s.exited)
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			close(s.grew)
			s.grew = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	line := s.waitLog(t, `msg="gateway listening"`)
	s.base = "http://" + listeningRE.FindStringSubmatch(line)[1]
	return s, path
}

// waitLog returns the first log line that contains all of subs, waiting
// for it if need be. It searches the whole log: what the gateway logs does
// not wait for the test to look.
func (s *served) waitLog(t *testing.T, subs ...string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		lines, grew := s.lines, s.grew
		s.mu.Unlock()
		for _, line := range lines {
			ok := true
			for _, sub := range subs {
				ok = ok && strings.Contains(line, sub)
			}
			if ok {
				return line
			}
		}
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("no log line with %q", subs)
		}
	}
}

// childMarker names a test's stdio children uniquely on this machine (the
// test, and this test process), so that checks for them see no others.
func childMarker(t *testing.T, prefix string) string {
	return prefix + "-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.Itoa(os.Getpid())
}

func upstreamYAML(demo, name, marker string) string {
	return "  - name: " + name + "\n    transport: stdio\n    command: " + demo + "\n    args: [--stdio, --name, " + marker + "]\n"
}

// A config change on disk, or SIGHUP, reloads the upstreams while a client
// session goes on; an invalid file is refused and the running config stays.
func TestReloadOnChangeAndSIGHUP(t *testing.T) {
	demo := buildDemo(t)
	dir := t.TempDir()
	a, b := childMarker(t, "reload-a"), childMarker(t, "reload-b")
	s, path := serveConfig(t, dir, "listen: 127.0.0.1:1\nupstreams:\n"+upstreamYAML(demo, "a", a), "--watch-config", "20ms")
	s.waitLog(t, `msg="upstream connected" upstream=a`)

	changed := make(chan struct{}, 10)
	c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: s.base + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func(tool string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"a": 6, "b": 7}})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	if got := call("a__multiply"); got != "42" {
		t.Fatalf("a__multiply = %q", got)
	}

	// The file changes: b is added, a keeps its child.
	os.WriteFile(path, []byte("listen: 127.0.0.1:1\nupstreams:\n"+upstreamYAML(demo, "a", a)+upstreamYAML(demo, "b", b)), 0o644)
	s.waitLog(t, `msg="config reloaded"`, `added=[b]`)
	s.waitLog(t, `msg="upstream connected" upstream=b`)
	if got := call("b__multiply"); got != "42" {
		t.Errorf("b__multiply after the reload = %q", got)
	}

	// An invalid file is refused; the session and both upstreams go on.
	os.WriteFile(path, []byte("listen: 127.0.0.1:1\nupstreams: [{name: BAD}]\n"), 0o644)
	s.waitLog(t, `msg="config reload refused; the running config stays"`)
	if got := call("a__multiply"); got != "42" {
		t.Errorf("a__multiply after a refused reload = %q", got)
	}

	// SIGHUP: a is removed; its child stops; the session goes on with b.
	os.WriteFile(path, []byte("listen: 127.0.0.1:1\nupstreams:\n"+upstreamYAML(demo, "b", b)), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	s.waitLog(t, `msg="config reloaded"`, `removed=[a]`)
	if childRunning(a) {
		t.Error("the removed upstream's child still runs")
	}
	if !childRunning(b) {
		t.Error("upstream b's child is gone")
	}
	if got := call("b__multiply"); got != "42" {
		t.Errorf("b__multiply after removing a = %q", got)
	}
}

// SIGTERM during a long tool call: within shutdown_grace the call finishes
// and its result reaches the client; past it, the call is ended. Either
// way the gateway exits 0 and no child outlives it.
func TestShutdownGrace(t *testing.T) {
	demo := buildDemo(t)
	for _, tc := range []struct {
		name     string
		grace    string
		steps    int
		finishes bool
	}{
		{"finishes within grace", "10s", 4, true},
		{"ended after grace", "200ms", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := childMarker(t, "grace")
			s, _ := serveConfig(t, t.TempDir(), "listen: 127.0.0.1:1\nshutdown_grace: "+tc.grace+"\nupstreams:\n"+upstreamYAML(demo, "demo", marker), "--watch-config", "0")
			s.waitLog(t, `msg="upstream connected" upstream=demo`)
			progressed := make(chan struct{}, 100)
			c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ClientOptions{
				ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
					select {
					case progressed <- struct{}{}:
					default:
					}
				},
			})
			cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: s.base + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			type outcome struct {
				res *mcp.CallToolResult
				err error
			}
			out := make(chan outcome, 1)
			go func() {
				params := &mcp.CallToolParams{Name: "demo__slow_count", Arguments: map[string]any{"n": tc.steps, "delay_ms": 100}}
				params.SetProgressToken("p")
				res, err := cs.CallTool(context.Background(), params)
				out <- outcome{res, err}
			}()
			select {
			case <-progressed:
			case <-time.After(30 * time.Second):
				t.Fatal("the call never progressed")
			}
			start := time.Now()
			s.cancel() // SIGTERM
			o := <-out
			if tc.finishes {
				if o.err != nil || o.res.IsError {
					t.Errorf("call during a long grace: %v %+v, want its result", o.err, o.res)
				}
			} else if o.err == nil && !o.res.IsError {
				t.Errorf("call past the grace period finished: %+v", o.res)
			}
			select {
			case code := <-s.done:
				if code != 0 {
					t.Errorf("exit code %d, want 0", code)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("gateway did not exit")
			}
			if !tc.finishes && time.Since(start) > 10*time.Second {
				t.Errorf("shutdown took %v with a 200ms grace", time.Since(start))
			}
			if childRunning(marker) {
				t.Error("the stdio child outlived the gateway")
			}
		})
	}
}

// metrics.listen serves /metrics on its own port, without a token, while
// the main listener does not serve it.
func TestMetricsListener(t *testing.T) {
	demo := buildDemo(t)
	s, _ := serveConfig(t, t.TempDir(), "listen: 127.0.0.1:1\nmetrics: {listen: \"127.0.0.1:0\"}\nupstreams:\n"+upstreamYAML(demo, "demo", childMarker(t, "metrics")), "--watch-config", "0")
	line := s.waitLog(t, `msg="metrics listening"`)
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)[1]
	s.waitLog(t, `msg="upstream connected" upstream=demo`)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `mcpgw_upstream_up{upstream="demo"} 1`) {
		t.Errorf("GET /metrics on the metrics port = %d:\n%.400s", resp.StatusCode, body)
	}
	if resp, err := http.Get(s.base + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /metrics on the main listener = %v, %v; want 404", resp, err)
	}
}
