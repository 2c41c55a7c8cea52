package upstream

// Shared test machinery. Stdio upstreams are real processes: the test binary
// re-executed as a small helper (see runHelper) or the repository's demo
// server. Remote upstreams are go-sdk servers on httptest. Waiting is always
// on an event (an OnChange snapshot, a log record) with a deadline, never a
// sleep.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// helperArg, as the first argument of the test binary, makes it a helper
// process instead of a test run. An argument rather than an environment
// variable, so that the helper's environment is exactly what upstream gave it.
const helperArg = "upstream-test-helper"

// waitTimeout bounds every wait for an event; a test that hits it has failed.
const waitTimeout = 15 * time.Second

// The helper server's catalog. testPageSize is small so that every list
// takes several pages.
const (
	testPageSize = 2
	numEchoTools = 5
)

var (
	testBinary string // this test binary, re-executed as helpers

	demoOnce sync.Once
	demoDir  string // holds the demo server once built
	demoPath string
	demoErr  error
)

func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == helperArg {
		// syscall.Exit rather than os.Exit: under -race, os.Exit waits a
		// second for late race reports, which would slow every stop.
		syscall.Exit(runHelper(os.Args[2]))
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "locating the test binary:", err)
		os.Exit(1)
	}
	testBinary = exe
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
	os.Exit(code)
}

// demoBinary builds cmd/demo once per test process.
func demoBinary(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		if demoDir, demoErr = os.MkdirTemp("", "upstream-demo-"); demoErr != nil {
			return
		}
		demoPath = filepath.Join(demoDir, "demo")
		out, err := exec.Command("go", "build", "-o", demoPath, "../cmd/demo").CombinedOutput()
		if err != nil {
			demoErr = fmt.Errorf("go build ./cmd/demo: %v\n%s", err, out)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoPath
}

// runHelper is the main function of a helper process.
func runHelper(mode string) int {
	ctx := context.Background()
	switch mode {
	case "server": // an MCP server on stdio
		fmt.Fprintln(os.Stderr, "helper ready")
		code := serveStdio(ctx)
		// Last words, which Close must wait for.
		fmt.Fprintln(os.Stderr, "helper: stdin closed, exiting")
		return code
	case "longline": // a server whose stderr has a line over the limit
		fmt.Fprintln(os.Stderr, "before long line")
		fmt.Fprintln(os.Stderr, strings.Repeat("x", maxStderrLine+maxStderrLine/2))
		fmt.Fprintln(os.Stderr, "after long line")
		return serveStdio(ctx)
	case "crash": // fails at once
		fmt.Fprintln(os.Stderr, "helper: fatal: boom")
		return 3
	case "stubborn": // ignores stdin EOF and SIGTERM
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		serveStdio(ctx)
		fmt.Fprintln(os.Stderr, "stubborn: stdin closed, staying")
		for range sigs {
			fmt.Fprintln(os.Stderr, "stubborn: got SIGTERM, staying")
		}
		return 0
	case "grandchild": // a server that leaves a child of its own behind
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "locating myself:", err)
			return 1
		}
		gc := exec.Command(exe, helperArg, "sleep")
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "starting grandchild:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "grandchild %d\n", gc.Process.Pid)
		return serveStdio(ctx)
	case "sleep": // lingers, deaf to SIGTERM, until killed
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(2 * time.Minute) // bounded, should a test fail to kill it
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
}

func serveStdio(ctx context.Context) int {
	if err := newTestServer("helper", nil).Run(ctx, &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "serving:", err)
		return 1
	}
	return 0
}

// newTestServer returns a server with more of everything than one page
// holds, and tools that report on the process that runs it. If catalogRead
// is not nil, it is called each time a client has been sent the last page of
// resource templates: the end of one full catalog read.
func newTestServer(name string, catalogRead func()) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "test"}, &mcp.ServerOptions{PageSize: testPageSize})
	if catalogRead != nil {
		s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				res, err := next(ctx, method, req)
				if r, ok := res.(*mcp.ListResourceTemplatesResult); ok && err == nil && r.NextCursor == "" {
					catalogRead()
				}
				return res, err
			}
		})
	}
	for i := range numEchoTools {
		addEchoTool(s, fmt.Sprintf("tool_%d", i))
	}
	mcp.AddTool(s, &mcp.Tool{Name: "add_tool", Description: "adds an echo tool"},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Name string `json:"name"`
		}) (*mcp.CallToolResult, any, error) {
			addEchoTool(s, in.Name)
			return textResult("added " + in.Name), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "environ", Description: "the server's environment, one per line"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			env := os.Environ()
			slices.Sort(env)
			return textResult(strings.Join(env, "\n")), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "the server's process id"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return textResult(strconv.Itoa(os.Getpid())), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "cwd", Description: "the server's working directory"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			wd, err := os.Getwd()
			if err != nil {
				return nil, nil, err
			}
			return textResult(wd), nil, nil
		})
	for i := range 3 {
		s.AddPrompt(&mcp.Prompt{Name: fmt.Sprintf("prompt_%d", i)},
			func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return &mcp.GetPromptResult{}, nil
			})
		uri := fmt.Sprintf("test://resource/%d", i)
		s.AddResource(&mcp.Resource{URI: uri, Name: fmt.Sprintf("resource_%d", i)},
			func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: "r"}}}, nil
			})
		s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: fmt.Sprintf("test://template/%d/{x}", i), Name: fmt.Sprintf("template_%d", i)},
			func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "t"}}}, nil
			})
	}
	return s
}

// addEchoTool adds (or replaces, identically) a tool that returns its name.
func addEchoTool(s *mcp.Server, name string) {
	mcp.AddTool(s, &mcp.Tool{Name: name, Description: "echo " + name},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return textResult(name), nil, nil
		})
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// wantCatalog is what newTestServer offers, by name (and URI), sorted.
func wantCatalog(extraTools ...string) map[string][]string {
	tools := []string{"add_tool", "cwd", "environ", "pid"}
	for i := range numEchoTools {
		tools = append(tools, fmt.Sprintf("tool_%d", i))
	}
	tools = append(tools, extraTools...)
	slices.Sort(tools)
	return map[string][]string{
		"tools":     tools,
		"prompts":   {"prompt_0", "prompt_1", "prompt_2"},
		"resources": {"test://resource/0", "test://resource/1", "test://resource/2"},
		"templates": {"test://template/0/{x}", "test://template/1/{x}", "test://template/2/{x}"},
	}
}

// catalogNames flattens a catalog for comparison with wantCatalog.
func catalogNames(c Catalog) map[string][]string {
	out := map[string][]string{"tools": {}, "prompts": {}, "resources": {}, "templates": {}}
	for _, t := range c.Tools {
		out["tools"] = append(out["tools"], t.Name)
	}
	for _, p := range c.Prompts {
		out["prompts"] = append(out["prompts"], p.Name)
	}
	for _, r := range c.Resources {
		out["resources"] = append(out["resources"], r.URI)
	}
	for _, r := range c.Templates {
		out["templates"] = append(out["templates"], r.URITemplate)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func sameCatalog(got Catalog, want map[string][]string) bool {
	g := catalogNames(got)
	for k, v := range want {
		if !slices.Equal(g[k], v) {
			return false
		}
	}
	return true
}

func emptyCatalog(c Catalog) bool {
	return len(c.Tools)+len(c.Prompts)+len(c.Resources)+len(c.Templates) == 0
}

// helperConfig is a stdio upstream running the test binary as helper mode.
func helperConfig(name, mode string) Config {
	return Config{Name: name, Transport: TransportStdio, Command: testBinary, Args: []string{helperArg, mode}}
}

// testOptions are fast defaults for tests.
func testOptions() Options {
	return Options{
		MinBackoff:   5 * time.Millisecond,
		MaxBackoff:   50 * time.Millisecond,
		RefreshDelay: 5 * time.Millisecond,
		StopGrace:    5 * time.Second,
	}
}

// A snapshot is what OnChange saw: it is taken inside the callback, on the
// supervisor goroutine, so it is the exact state the change produced.
type snapshot struct {
	status  Status
	catalog Catalog
	sessErr error
}

// harness runs one Upstream with a recording logger and OnChange hook.
type harness struct {
	u       *Upstream
	logs    *logRecorder
	changes chan snapshot
}

// startUpstream starts an Upstream for cfg; it is closed when the test ends.
func startUpstream(t *testing.T, cfg Config, opts Options) *harness {
	t.Helper()
	h := newHarness(cfg, opts)
	t.Cleanup(func() { h.u.Close() })
	h.u.Start()
	return h
}

func newHarness(cfg Config, opts Options) *harness {
	h := &harness{logs: &logRecorder{added: make(chan struct{})}, changes: make(chan snapshot, 1000)}
	opts.Logger = slog.New(&recordHandler{r: h.logs})
	opts.OnChange = func() {
		_, err := h.u.Session()
		select {
		case h.changes <- snapshot{h.u.Status(), h.u.Catalog(), err}:
		default: // the test stopped listening
		}
	}
	h.u = New(cfg, &opts)
	return h
}

// waitChange returns the first OnChange snapshot that satisfies ok.
func (h *harness) waitChange(t *testing.T, what string, ok func(snapshot) bool) snapshot {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		select {
		case s := <-h.changes:
			if ok(s) {
				return s
			}
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; status %+v; log:\n%s", what, h.u.Status(), h.logs.dump())
		}
	}
}

// nextChange returns the next OnChange snapshot.
func (h *harness) nextChange(t *testing.T, what string) snapshot {
	t.Helper()
	return h.waitChange(t, what, func(snapshot) bool { return true })
}

func (h *harness) waitUp(t *testing.T) snapshot {
	t.Helper()
	return h.waitChange(t, "state up", func(s snapshot) bool { return s.status.State == StateUp })
}

// callText calls a tool on the live session and returns its text.
func callText(t *testing.T, u *Upstream, tool string, args map[string]any) string {
	t.Helper()
	s, err := u.Session()
	if err != nil {
		t.Fatalf("Session() = %v, want a session", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%q) = %v", tool, err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("CallTool(%q) = %+v, want one text content", tool, res)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("CallTool(%q) content = %T, want *mcp.TextContent", tool, res.Content[0])
	}
	return text.Text
}

// waitUntil polls cond, for conditions that announce no event (a process
// reaped by someone else). It fails the test after waitTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processGone reports whether pid has exited (is gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	// The state follows the parenthesized command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] == 'Z' || s[i+2] == 'X'
}

// A logRecord is one flattened slog record.
type logRecord struct {
	time  time.Time
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder keeps every record and wakes waiters on each new one.
type logRecorder struct {
	mu      sync.Mutex // guards the fields below
	records []logRecord
	added   chan struct{} // closed and replaced when a record is added
}

func (r *logRecorder) add(rec logRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	close(r.added)
	r.added = make(chan struct{})
}

// all returns the records so far.
func (r *logRecorder) all() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// wait returns the n-th (from 1) record that matches.
func (r *logRecorder) wait(t *testing.T, what string, n int, match func(logRecord) bool) logRecord {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	seen, i := 0, 0
	for {
		r.mu.Lock()
		for ; i < len(r.records); i++ {
			if match(r.records[i]) {
				if seen++; seen == n {
					rec := r.records[i]
					r.mu.Unlock()
					return rec
				}
			}
		}
		added := r.added
		r.mu.Unlock()
		select {
		case <-added:
		case <-timeout.C:
			t.Fatalf("timed out waiting for log record %d of %s; log:\n%s", n, what, r.dump())
		}
	}
}

func (r *logRecorder) dump() string {
	var b strings.Builder
	for _, rec := range r.all() {
		fmt.Fprintf(&b, "\t%s %s %v\n", rec.level, rec.msg, rec.attrs)
	}
	return b.String()
}

// isMsg matches records with message msg.
func isMsg(msg string) func(logRecord) bool {
	return func(r logRecord) bool { return r.msg == msg }
}

// isStderr matches a stderr line of upstream name.
func isStderr(name, line string) func(logRecord) bool {
	return func(r logRecord) bool {
		return r.msg == "upstream stderr" && r.attrs["upstream"] == name && r.attrs["line"] == line
	}
}

type recordHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.Resolve().String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	h.r.add(logRecord{time: rec.Time, level: rec.Level, msg: rec.Message, attrs: attrs})
	return nil
}

func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{r: h.r, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *recordHandler) WithGroup(string) slog.Handler { return h }
