package gateway

// Access and audit logs, end to end: a gateway with OAuth (so that tokens
// travel), real clients over both transports, and a log captured as JSON
// lines. Waits are on log records, never on sleeps.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth/authtest"
)

// logCapture is an io.Writer for a slog.JSONHandler that keeps every record
// and wakes waiters on each one.
type logCapture struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every record
}

func newLogCapture() *logCapture { return &logCapture{changed: make(chan struct{})} }

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, strings.TrimSpace(string(p)))
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// records returns the records so far, decoded, and a channel closed on the
// next one.
func (c *logCapture) records(t *testing.T) ([]map[string]any, <-chan struct{}) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]map[string]any, 0, len(c.lines))
	for _, l := range c.lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, rec)
	}
	return out, c.changed
}

func (c *logCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// wait returns the first record for which ok holds, waiting for it.
func (c *logCapture) wait(t *testing.T, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		recs, changed := c.records(t)
		for _, r := range recs {
			if ok(r) {
				return r
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for a log record: %s; log:\n%s", what, c.text())
		}
	}
}

// fields returns a predicate on records: each key has the value (as the
// JSON decoder gives it: numbers are float64).
func fields(kv ...any) func(map[string]any) bool {
	return func(r map[string]any) bool {
		for i := 0; i+1 < len(kv); i += 2 {
			if r[kv[i].(string)] != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// One access line per request, written when the response is done (a
// stream's at its end), carrying no token, query string or session id;
// one audit line per completed call, with its outcome and duration and
// without its arguments; denials audited as before.
func TestAccessAndAuditLogs(t *testing.T) {
	logs := newLogCapture()
	idp := authtest.NewProvider(t, nil)
	const canary = "argument-canary-7f3e"
	tg := startGateway(t, []UpstreamConfig{
		demoUpstream("demo"),
		{Name: "admin", Transport: TransportStreamableHTTP, URL: startSDKServer(t, echoServer("admin", "echo"), false)},
	}, func(c *Config, o *Options) {
		c.Auth = AuthConfig{
			Mode:           "oauth2",
			Issuers:        []IssuerConfig{{URL: idp.Issuer()}},
			Audience:       testAudience,
			RequiredScopes: []string{"mcp:tools"},
			Policies:       []PolicyConfig{{Upstreams: []string{"admin"}, RequireScopes: []string{"mcp:admin"}}},
		}
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	alice := idp.Token(t, authtest.Claims{Subject: "alice", Audience: []string{testAudience}, Scope: "mcp:tools mcp:admin"})
	bob := idp.Token(t, authtest.Claims{Subject: "bob", Audience: []string{testAudience}, Scope: "mcp:tools"})

	cs := authedClient(t, tg.mcpURL(), "streamable", alice)
	cs.waitTools(t, "both up", hasAll("demo__multiply", "admin__echo"))
	sid := cs.ID()
	if got := callText(t, cs.ClientSession, "admin__echo", map[string]any{"text": canary}); !strings.Contains(got, canary) {
		t.Fatalf("admin__echo = %q", got)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo__multiply", Arguments: map[string]any{"a": 2}}); err != nil || !res.IsError {
		t.Fatalf("CallTool(multiply without b) = %v, %v; want a tool error", res, err)
	}
	legacy := authedClient(t, tg.sseURL(), "sse", bob)
	callText(t, legacy.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7})
	if _, err := legacy.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin__echo", Arguments: map[string]any{"text": canary}}); err == nil {
		t.Fatal("bob called admin__echo; the policy should deny it")
	}
	if resp, _ := doRequest(t, "POST", tg.mcpURL()+"?access_token="+alice, initBody, jsonHeaders); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("token in the query string: status %d, want 400", resp.StatusCode)
	}
	// Ending the clients ends their streams, whose lines come last.
	cs.Close()
	legacy.Close()

	post := logs.wait(t, "POST /mcp tools/call", fields("msg", "http", "method", "POST", "path", PathMCP, "mcp_method", "tools/call"))
	if post["status"] != float64(200) || post["level"] != "INFO" || post["bytes"].(float64) <= 0 || post["user_agent"] == "" || post["remote"] == "" {
		t.Errorf("access line for a call = %v; want INFO, status 200, bytes, user agent and remote", post)
	}
	if _, ok := post["duration_ms"].(float64); !ok {
		t.Errorf("access line for a call has no duration_ms: %v", post)
	}
	logs.wait(t, "POST /mcp initialize", fields("msg", "http", "method", "POST", "path", PathMCP, "mcp_method", "initialize"))
	logs.wait(t, "GET /mcp stream, at its end", fields("msg", "http", "method", "GET", "path", PathMCP, "status", float64(200)))
	logs.wait(t, "GET /sse stream, at its end", fields("msg", "http", "method", "GET", "path", PathSSE, "status", float64(200)))
	logs.wait(t, "POST /message", fields("msg", "http", "method", "POST", "path", PathMessage, "mcp_method", "tools/call"))
	logs.wait(t, "token in the query string", fields("msg", "http", "method", "POST", "path", PathMCP, "status", float64(400)))

	ok := logs.wait(t, "audit of the echo call", fields("msg", "audit", "action", "tools/call", "name", "admin__echo"))
	for k, want := range map[string]any{"outcome": "ok", "upstream": "admin", "target": "admin/echo", "level": "INFO"} {
		if ok[k] != want {
			t.Errorf("audit line %v: %s = %v, want %v", ok, k, ok[k], want)
		}
	}
	if p, _ := ok["principal"].(string); !strings.Contains(p, "alice") {
		t.Errorf("audit line %v: principal %q, want alice's", ok, p)
	}
	if d, isNum := ok["duration_ms"].(float64); !isNum || d <= 0 {
		t.Errorf("audit line %v: duration_ms = %v, want a positive number", ok, ok["duration_ms"])
	}
	logs.wait(t, "audit of the tool error", fields("msg", "audit", "action", "tools/call", "name", "demo__multiply", "outcome", "tool_error"))
	logs.wait(t, "audit of bob's call over SSE", fields("msg", "audit", "action", "tools/call", "name", "demo__multiply", "outcome", "ok"))
	denied := logs.wait(t, "audit of the denial", fields("msg", "audit", "action", "tools/call", "outcome", "denied"))
	if denied["target"] != "admin/echo" || !strings.Contains(denied["principal"].(string), "bob") {
		t.Errorf("denial audit line = %v, want bob denied admin/echo", denied)
	}

	all := logs.text()
	for _, secret := range []string{alice, bob, sid, canary, "sessionId", "access_token", "Bearer"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q:\n%s", secret, all)
		}
	}
	recs, _ := logs.records(t)
	for _, r := range recs {
		if r["msg"] != "http" {
			continue
		}
		if p, _ := r["path"].(string); strings.ContainsAny(p, "?&=") {
			t.Errorf("access line path %q carries a query", p)
		}
	}
}

func TestPeekMethod(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, "tools/call"},
		{`  {"method":"notifications/initialized","jsonrpc":"2.0"}`, "notifications/initialized"},
		{`{"jsonrpc":"2.0","id":1,"params":{"name":"x"},"method":"tools/list"}`, "tools/list"},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "batch"},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"a b\n<script>"}`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("x", 100) + `"}`, ""},
		{(`{"jsonrpc":"2.0","params":{"arguments":"` + strings.Repeat("y", methodPeekBytes) + `"},"method":"tools/call"}`)[:methodPeekBytes], ""},
		{`not json`, ""},
		{``, ""},
	} {
		if got := peekMethod([]byte(tc.body)); got != tc.want {
			t.Errorf("peekMethod(%.40q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// The recorder passes streaming through: Flush reaches the connection and
// ResponseController finds the writer beneath.
func TestResponseRecorder(t *testing.T) {
	inner := &flushRecorder{header: http.Header{}}
	rr := &responseRecorder{ResponseWriter: inner}
	rr.WriteHeader(http.StatusEarlyHints)
	if err := http.NewResponseController(rr).Flush(); err != nil {
		t.Fatalf("Flush through the recorder: %v", err)
	}
	rr.Write([]byte("data: x\n\n"))
	rr.WriteHeader(http.StatusTeapot) // too late: the response has begun
	if rr.Status() != http.StatusOK || rr.bytes.Load() != 9 || !inner.flushed {
		t.Errorf("recorder status %d bytes %d flushed %t; want 200, 9, true", rr.Status(), rr.bytes.Load(), inner.flushed)
	}
}

type flushRecorder struct {
	header  http.Header
	body    bytes.Buffer
	flushed bool
}

func (f *flushRecorder) Header() http.Header         { return f.header }
func (f *flushRecorder) Write(b []byte) (int, error) { return f.body.Write(b) }
func (f *flushRecorder) WriteHeader(int)             {}
func (f *flushRecorder) Flush()                      { f.flushed = true }
