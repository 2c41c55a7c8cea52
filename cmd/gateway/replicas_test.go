package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// replicaProc is one gateway process of a deployment.
type replicaProc struct {
	cmd  *exec.Cmd
	addr string
}

// roundRobin sends each HTTP request to the next live replica, as a plain
// load balancer without sticky sessions does.
type roundRobin struct {
	mu    sync.Mutex
	next  int
	addrs []string // "" once taken out
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	rr.mu.Lock()
	var addr string
	for range rr.addrs {
		addr = rr.addrs[rr.next%len(rr.addrs)]
		rr.next++
		if addr != "" {
			break
		}
	}
	rr.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Host, req.Host = addr, addr
	return http.DefaultTransport.RoundTrip(req)
}

func (rr *roundRobin) remove(addr string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for i, a := range rr.addrs {
		if a == addr {
			rr.addrs[i] = ""
		}
	}
}

// Three gateway processes share one Redis behind a round-robin balancer:
// every request of a session, over /mcp (2025-11-25 and 2026-07-28) and
// /sse, works whichever replica it reaches; then the session's owner is
// killed with SIGKILL and the same session goes on.
func TestReplicasSurviveKill(t *testing.T) {
	demo := buildDemo(t)
	rdb := redistest.Start(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building gateway: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(`listen: 127.0.0.1:1
upstreams:
`+upstreamYAML(demo, "demo", childMarker(t, "replicas"))+upstreamYAML(demo, "ps", childMarker(t, "replicas-ps"))+`    sharing: per-session
session_store:
  type: redis
  redis: {url: "`+rdb.URL()+`"}
request_state:
  key: bG9jYWwtcmVwbGljYXMtb25seS1ub3QtYS1zZWNyZXQ
`), 0o644)

	var procs []*replicaProc
	for range 3 {
		cmd := exec.Command(bin, "--config", cfg, "--listen", "127.0.0.1:0", "--watch-config", "0")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		p := &replicaProc{cmd: cmd}
		sc := bufio.NewScanner(stderr)
		up, listening := false, false
		for (!up || !listening) && sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				p.addr, listening = m[1], true
			}
			up = up || strings.Contains(sc.Text(), `msg="upstream connected" upstream=demo`)
		}
		if !up || !listening {
			t.Fatal("a replica did not come up")
		}
		go func() {
			for sc.Scan() {
			}
		}()
		procs = append(procs, p)
	}
	rr := &roundRobin{}
	for _, p := range procs {
		rr.addrs = append(rr.addrs, p.addr)
	}
	hc := &http.Client{Transport: rr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	multiply := func(cs *mcp.ClientSession, a int) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__multiply", Arguments: map[string]any{"a": a, "b": 2}})
		if err != nil {
			t.Fatalf("multiply: %v", err)
		}
		if got, want := res.Content[0].(*mcp.TextContent).Text, strconv.Itoa(2*a); got != want {
			t.Fatalf("multiply(%d, 2) = %s, want %s", a, got, want)
		}
	}

	// 2025-11-25: the initialize makes replica 0 the owner.
	progress := make(chan float64, 100)
	c := mcp.NewClient(&mcp.Implementation{Name: "rr", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) { progress <- req.Params.Progress },
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "sampled through the replicas"}}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + procs[0].addr + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for i := range 4 {
		multiply(cs, i)
	}
	params := &mcp.CallToolParams{Name: "demo__slow_count", Arguments: map[string]any{"n": 3, "delay_ms": 1}}
	params.SetProgressToken("p")
	if _, err := cs.CallTool(ctx, params); err != nil {
		t.Fatal(err)
	}
	// The SDK client hands notifications to their handler on a goroutine of
	// their own, so progress may be seen just after the result.
	select {
	case <-progress:
	case <-time.After(10 * time.Second):
		t.Error("no progress reached the client through the replicas")
	}

	// A per-session upstream's sampling request reaches this client, on
	// the stream of the call that caused it, through the forwarding.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ps__summarize_alerts", Arguments: map[string]any{"state": "CA"}})
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "sampled through the replicas") {
		t.Errorf("per-session sampling through the replicas: %v %+v", err, res)
	}

	// 2026-07-28, stateless, including an input_required round trip whose
	// retry lands on another replica than the first request.
	modern := mcp.NewClient(&mcp.Implementation{Name: "rr26", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			if strings.Contains(req.Params.Message, "name") {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
		},
	})
	ms, err := modern.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + procs[0].addr + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	multiply(ms, 5)
	res, err = ms.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet"})
	if err != nil || res.StructuredContent == nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "Hello, Ada!") {
		t.Errorf("greet across replicas: %v %+v", err, res)
	}

	// The legacy SSE transport: the stream stays on one replica, the POSTs
	// rotate and are forwarded to it.
	sc := mcp.NewClient(&mcp.Implementation{Name: "rrsse", Version: "1"}, nil)
	ss, err := sc.Connect(ctx, &mcp.SSEClientTransport{Endpoint: "http://" + procs[1].addr + "/sse", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	for i := range 3 {
		multiply(ss, i)
	}

	// SIGKILL the owner of the 2025-11-25 session; it goes on elsewhere.
	procs[0].cmd.Process.Kill()
	procs[0].cmd.Wait()
	rr.remove(procs[0].addr)
	for i := range 4 {
		multiply(cs, 10+i)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Errorf("tools/list after the owner died: %v", err)
	}
}
