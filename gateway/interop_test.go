package gateway

// Interoperability with a client we did not write: the official TypeScript
// SDK (@modelcontextprotocol/sdk, pinned by testdata/tsclient's lock file)
// lists and calls through /mcp and /sse. The test installs the package with
// `npm ci` when node_modules is missing. Set GATEWAY_SKIP_INTEROP=1 to skip
// it on a machine without Node.js; CI never does.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

var npmOnce struct {
	sync.Once
	err error
	out []byte
}

func tsClientDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("GATEWAY_SKIP_INTEROP") == "1" {
		t.Skip("GATEWAY_SKIP_INTEROP=1")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "tsclient"))
	if err != nil {
		t.Fatal(err)
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		npmOnce.out, npmOnce.err = cmd.CombinedOutput()
	})
	if npmOnce.err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, npmOnce.err, npmOnce.out)
	}
	return dir
}

type tsResult struct {
	ServerInfo      struct{ Name, Version string } `json:"serverInfo"`
	ProtocolVersion string                         `json:"protocolVersion"`
	Tools           []string                       `json:"tools"`
	Result          *struct {
		Content []struct{ Type, Text string } `json:"content"`
		IsError bool                          `json:"isError"`
	} `json:"result"`
}

func TestTypeScriptClientInterop(t *testing.T) {
	dir := tsClientDir(t)
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	// Wait until the demo upstream is in the catalog before the TS client
	// looks, so the test is about interop, not start-up order.
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))

	for _, c := range []struct{ transport, url string }{
		{"streamable", tg.mcpURL()},
		{"sse", tg.sseURL()},
	} {
		t.Run(c.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "client.mjs", "--url", c.url, "--transport", c.transport,
				"--call", "demo__multiply", "--args", `{"a":6,"b":7}`)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("TypeScript client over %s: %v\nstderr: %s", c.transport, err, stderr.String())
			}
			var res tsResult
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("TypeScript client output %q: %v", stdout.String(), err)
			}
			if res.ServerInfo.Name != "mcp-gateway" {
				t.Errorf("serverInfo.name = %q, want mcp-gateway", res.ServerInfo.Name)
			}
			for _, want := range []string{"demo__multiply", "demo__get_alerts", "demo__save_memory", "demo__search_memory"} {
				if !slices.Contains(res.Tools, want) {
					t.Errorf("tools = %v, want %q among them", res.Tools, want)
				}
			}
			if res.Result == nil || res.Result.IsError || len(res.Result.Content) == 0 || !strings.Contains(res.Result.Content[0].Text, "42") {
				t.Errorf("demo__multiply(6, 7) through the TypeScript client = %+v, want 42", res.Result)
			}
		})
	}
}

// The official TypeScript SDK, a 2025-era client, answers the input that a
// 2026-07-28 upstream asks for: the gateway turns the upstream's
// input_required results into real elicitation and sampling requests on the
// client's session (Streamable HTTP and SSE), over two rounds for greet.
func TestTypeScriptClientAnswersInput(t *testing.T) {
	dir := tsClientDir(t)
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__greet"))
	for _, c := range []struct{ transport, url string }{
		{"streamable", tg.mcpURL()},
		{"sse", tg.sseURL()},
	} {
		for _, call := range []struct{ tool, args, want string }{
			{"demo__greet", `{}`, "Hello, Ada!"},
			{"demo__summarize_alerts", `{"state":"CA"}`, "calm skies"},
		} {
			t.Run(c.transport+"/"+call.tool, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, "node", "client.mjs", "--url", c.url, "--transport", c.transport,
					"--call", call.tool, "--args", call.args, "--elicit-name", "Ada", "--sample", "calm skies")
				cmd.Dir = dir
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("TypeScript client: %v\nstderr: %s", err, stderr.String())
				}
				if !strings.Contains(stdout.String(), call.want) {
					t.Errorf("%s over %s = %s, want %q in it", call.tool, c.transport, stdout.String(), call.want)
				}
			})
		}
	}
}

// The official TypeScript SDK resumes a long call whose stream it lost. A
// call that outlives the keep-alive interval gets an event stream with a
// priming event; a proxy cuts the connection right after it, as a network
// would; the client reconnects with GET and Last-Event-ID, and the answer,
// which comes after, arrives there.
func TestTypeScriptClientResumesLongCall(t *testing.T) {
	dir := tsClientDir(t)
	rdb := redistest.Start(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	upURL := startSDKServer(t, waitServer(release, started), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "s", Transport: TransportStreamableHTTP, URL: upURL}}, func(c *Config, o *Options) {
		c.SessionStore.Type = "redis"
		c.SessionStore.Redis = &RedisConfig{URL: rdb.URL(), Prefix: "test:" + t.Name() + ":"}
		o.KeepAlive = 50 * time.Millisecond
	})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "s up", hasAll("s__wait"))

	target, err := url.Parse(tg.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	resumed := make(chan string, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Header.Get("X-Test-Cut") != "" && mediaType(resp.Header.Get("Content-Type")) == "text/event-stream" && !cut.Load() {
			resp.Body = &cutAfterPrime{ReadCloser: resp.Body, cut: &cut}
		}
		return nil
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Last-Event-ID"); r.Method == http.MethodGet && id != "" {
			select {
			case resumed <- id:
			default:
			}
		}
		if r.Method == http.MethodPost {
			// Only the call's stream is cut (the SDK primes initialize's too).
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"method":"tools/call"`)) {
				r.Header.Set("X-Test-Cut", "1")
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs", "--url", proxy.URL+PathMCP, "--transport", "streamable", "--call", "s__wait")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-started:
	case err := <-exited:
		t.Fatalf("the client exited before calling: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	case <-time.After(waitTimeout):
		t.Fatal("the call never reached the upstream")
	}
	select {
	case id := <-resumed:
		if !cut.Load() || !strings.HasPrefix(id, fastStreamPrefix) {
			t.Errorf("the client resumed from %q (stream cut: %v), want the id of the call's priming event", id, cut.Load())
		}
	case err := <-exited:
		t.Fatalf("the client exited before resuming: %v\nstderr: %s", err, stderr.String())
	case <-time.After(waitTimeout):
		t.Fatal("the client never resumed the stream")
	}
	close(release)
	if err := <-exited; err != nil {
		t.Fatalf("TypeScript client: %v\nstderr: %s", err, stderr.String())
	}
	var res tsResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("TypeScript client output %q: %v", stdout.String(), err)
	}
	if res.Result == nil || res.Result.IsError || len(res.Result.Content) == 0 || res.Result.Content[0].Text != "done <ok>" {
		t.Errorf("s__wait through the TypeScript client, its stream cut once = %+v, want done <ok>", res.Result)
	}
}

// cutAfterPrime passes a response body through until the end of its first
// priming event, and then fails, as a connection lost at that point would.
type cutAfterPrime struct {
	io.ReadCloser
	cut  *atomic.Bool
	seen []byte
}

func (c *cutAfterPrime) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, errors.New("connection cut by the test")
	}
	n, err := c.ReadCloser.Read(p)
	c.seen = append(c.seen, p[:n]...)
	if i := bytes.Index(c.seen, []byte("event: prime\n")); i >= 0 {
		if j := bytes.Index(c.seen[i:], []byte("\n\n")); j >= 0 {
			// Deliver the event, and nothing after it.
			end := i + j + 2 - (len(c.seen) - n)
			c.cut.Store(true)
			return max(end, 0), nil
		}
	}
	return n, err
}
