package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/gateway/sessionstore"
	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// replica is one gateway of a deployment that shares a Redis.
type replica struct {
	g   *Gateway
	srv *httptest.Server
}

// startReplicas starts n gateways over ups that share the Redis at
// redisURL (under a prefix of their own).
func startReplicas(t *testing.T, n int, redisURL string, ups []UpstreamConfig) []*replica {
	t.Helper()
	prefix := "test:" + strings.ReplaceAll(t.Name(), "/", "_") + ":"
	// One deployment, one request state key.
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	var out []*replica
	for range n {
		tg := startGateway(t, ups, func(c *Config, _ *Options) {
			c.SessionStore.Type = "redis"
			c.SessionStore.Redis = &RedisConfig{URL: redisURL, Prefix: prefix}
			c.RequestState.Key = key
		})
		out = append(out, &replica{g: tg.g, srv: tg.srv})
	}
	return out
}

// balancer is a client-side round-robin load balancer over replicas: every
// HTTP request goes to the next live one, as a plain L4/L7 balancer without
// sticky sessions would send it.
type balancer struct {
	mu      sync.Mutex
	next    int
	hosts   []string // host:port of each replica; "" when taken out
	sent    map[string]int
	gets    chan string // hosts that accepted a GET (a standalone stream) since a removal
	removed bool
}

func newBalancer(rs []*replica) *balancer {
	b := &balancer{sent: map[string]int{}, gets: make(chan string, 100)}
	for _, r := range rs {
		b.hosts = append(b.hosts, r.srv.Listener.Addr().String())
	}
	return b
}

// requests returns how many requests the balancer has sent.
func (b *balancer) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.sent {
		n += c
	}
	return n
}

// remove takes replica i out of rotation, as a balancer does with a dead
// backend.
func (b *balancer) remove(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hosts[i] = ""
	b.removed = true
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	var host string
	for range b.hosts {
		host = b.hosts[b.next%len(b.hosts)]
		b.next++
		if host != "" {
			break
		}
	}
	b.sent[host]++
	report := b.removed
	b.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Host = host
	req.Host = host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && report && req.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		b.gets <- host
	}
	return resp, err
}

// Behind a round-robin balancer, every request of a session works whichever
// replica it lands on: the session's owner serves it, the others forward it
// there. The session's record names its owner and keeps its state.
func TestAnyReplicaServesAnySession(t *testing.T) {
	rdb := redistest.Start(t)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{demoUpstream("demo")})
	for _, r := range rs {
		connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	}
	held := rs[0].g.sessions.count() + rs[1].g.sessions.count()
	lb := newBalancer(rs)
	// No standalone stream: its GET would land at any moment, inside the
	// window where round trips are counted.
	c := mcp.NewClient(&mcp.Implementation{Name: "lb-client", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: rs[0].srv.URL + PathMCP, HTTPClient: &http.Client{Transport: lb}, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	for i := range 2 {
		if got := callText(t, cs, "demo__multiply", map[string]any{"a": i, "b": 7}); got != strconv.Itoa(i*7) {
			t.Errorf("call %d through the balancer = %q, want %d", i, got, i*7)
		}
	}
	// At most one Redis round trip per request, wherever it lands; counted
	// once the background writes of the set-up are over.
	redisQuiet(t, rdb.Addr())
	before, requestsBefore := redisCalls(t, rdb.Addr()), lb.requests()
	const calls = 6
	for i := range calls {
		if got := callText(t, cs, "demo__multiply", map[string]any{"a": i, "b": 7}); got != strconv.Itoa(i*7) {
			t.Errorf("call %d through the balancer = %q, want %d", i, got, i*7)
		}
	}
	if n, reqs := redisCalls(t, rdb.Addr())-before, lb.requests()-requestsBefore; n > reqs {
		t.Errorf("%d HTTP requests (%d calls) through the balancer made %d Redis round trips, want at most one each", reqs, calls, n)
	}
	if err := cs.SetLoggingLevel(callCtx(t), &mcp.SetLoggingLevelParams{Level: "warning"}); err != nil {
		t.Fatal(err)
	}
	lb.mu.Lock()
	sent := len(lb.sent)
	lb.mu.Unlock()
	if sent != 2 {
		t.Errorf("the balancer used %d replicas, want both", sent)
	}
	owners := -held
	for _, r := range rs {
		owners += r.g.sessions.count()
	}
	if owners != 1 {
		t.Errorf("%d replicas hold the session, want exactly one (the owner)", owners)
	}
	rec, err := rs[0].g.store.Get(callCtx(t), cs.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Owner != rs[0].g.advertise && rec.Owner != rs[1].g.advertise {
		t.Errorf("record owner %q is neither replica", rec.Owner)
	}
	if rec.LogLevel != "warning" || rec.ProtocolVersion != "2025-11-25" || len(rec.State) == 0 {
		t.Errorf("record = %+v, want the log level, version and state", rec)
	}
}

// A replica that dies does not end its sessions: the next request lands on
// another replica, which takes the session over from Redis (state, log
// level, subscriptions) and serves it; the client never sees a 404.
func TestDeadReplicaSessionsAreTakenOver(t *testing.T) {
	rdb := redistest.Start(t)
	var upstreamSubs atomic.Int32
	unsubscribed := make(chan struct{}, 10)
	watchURL := startSDKServer(t, watchServer(&upstreamSubs, unsubscribed), false)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{{Name: "w", Transport: TransportStreamableHTTP, URL: watchURL}})
	for _, r := range rs {
		connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "w up", hasAll("w__touch"))
	}

	held0, held1 := rs[0].g.sessions.count(), rs[1].g.sessions.count()
	lb := newBalancer(rs)
	updates := make(chan string, 10)
	c := mcp.NewClient(&mcp.Implementation{Name: "lb-client", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updates <- req.Params.URI },
	})
	// The initialize goes to replica 0, which becomes the owner.
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: rs[0].srv.URL + PathMCP, HTTPClient: &http.Client{Transport: lb}}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	if n := rs[0].g.sessions.count() - held0; n != 1 {
		t.Fatalf("replica 0 holds %d new sessions, want the new one", n)
	}
	if err := cs.Subscribe(callCtx(t), &mcp.SubscribeParams{URI: "w+file:///a.txt"}); err != nil {
		t.Fatal(err)
	}

	// Replica 0 dies: its listener goes away and it holds the session no
	// more; the record stays in Redis.
	lb.remove(0)
	rs[0].srv.CloseClientConnections()
	rs[0].srv.Listener.Close()
	rs[0].g.CloseSessions()

	if got := callText(t, cs, "w__touch", map[string]any{"uri": "file:///b.txt"}); got != "touched" {
		t.Fatalf("first call after the owner died = %q", got)
	}
	// The client reopens its stream, now on replica 1.
	alive := rs[1].srv.Listener.Addr().String()
	for host := recvTimeout(t, lb.gets, "the client's stream to reopen"); host != alive; {
		host = recvTimeout(t, lb.gets, "the client's stream to reopen on replica 1")
	}
	if n := rs[1].g.sessions.count() - held1; n != 1 {
		t.Fatalf("replica 1 holds %d new sessions after the takeover, want 1", n)
	}
	rec, err := rs[1].g.store.Get(callCtx(t), cs.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Owner != rs[1].g.advertise {
		t.Errorf("record owner after takeover = %q, want replica 1 (%s)", rec.Owner, rs[1].g.advertise)
	}
	if len(rec.Subscriptions) != 1 || rec.Subscriptions[0] != "w+file:///a.txt" {
		t.Errorf("record subscriptions after takeover = %v", rec.Subscriptions)
	}
	// The subscription was renewed on replica 1: an update reaches the
	// client (on the stream it reopens there).
	callText(t, cs, "w__touch", map[string]any{"uri": "file:///a.txt"})
	select {
	case got := <-updates:
		if got != "w+file:///a.txt" {
			t.Errorf("update for %q", got)
		}
	case <-time.After(waitTimeout):
		t.Error("no resource update after the takeover")
	}
}

// An owner that dies while a request is on its way (the connection is taken
// and then dropped without an answer) is told from a failing owner by a
// fresh dial: the request is served by a replica that takes the session
// over, not answered with 502.
func TestOwnerDyingMidRequestIsTakenOver(t *testing.T) {
	rdb := redistest.Start(t)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{demoUpstream("demo")})
	connect(t, rs[1].srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	c := mcp.NewClient(&mcp.Implementation{Name: "dying-owner", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: rs[0].srv.URL + PathMCP, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	// The record holds the session's state once a change of it has been
	// answered (the initialize's is recorded in the background).
	if err := cs.SetLoggingLevel(callCtx(t), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}

	// The record now names an owner that takes one request's connection,
	// stops listening and hangs up without answering.
	dying, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	took := make(chan struct{})
	go func() {
		conn, err := dying.Accept()
		if err != nil {
			return
		}
		http.ReadRequest(bufio.NewReader(conn))
		dying.Close()
		conn.Close()
		close(took)
	}()
	t.Cleanup(func() { dying.Close() })
	// Replica 0 lets the session go first (its record stays), so that no
	// late update of its own names it the owner again.
	rs[0].g.CloseSessions()
	rec, err := rs[0].g.store.Get(callCtx(t), cs.ID())
	if err != nil {
		t.Fatal(err)
	}
	rec.Owner = "http://" + dying.Addr().String()
	if err := rs[0].g.store.Update(callCtx(t), rec, time.Minute); err != nil {
		t.Fatal(err)
	}

	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`
	req, _ := http.NewRequestWithContext(callCtx(t), http.MethodPost, rs[1].srv.URL+PathMCP, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(headerSessionID, cs.ID())
	req.Header.Set(headerProtocolVersion, "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	recvTimeout(t, took, "the dying owner to take the forwarded request")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"text":"42"`) {
		t.Fatalf("call whose owner died mid-request: %d %s", resp.StatusCode, out)
	}
	if rec, err := rs[1].g.store.Get(callCtx(t), cs.ID()); err != nil || rec.Owner != rs[1].g.advertise {
		t.Errorf("record after the takeover: %+v %v, want replica 1 as owner", rec, err)
	}
}

// Without Redis the gateway is not ready, and requests that need a session
// get 503 with Retry-After, never a hang or a 500; when Redis is back, so
// is the gateway, and the sessions still in Redis go on.
func TestRedisDown(t *testing.T) {
	rdb := redistest.Start(t)
	rs := startReplicas(t, 1, rdb.URL(), []UpstreamConfig{demoUpstream("demo")})
	r := rs[0]
	connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	cs := connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25")

	rdb.Stop()
	resp, body := doRequest(t, http.MethodGet, r.srv.URL+PathReady, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"sessionStore":"unavailable"`) {
		t.Errorf("readyz with Redis down = %d %s, want 503 naming the store", resp.StatusCode, body)
	}
	resp, body = doRequest(t, http.MethodPost, r.srv.URL+PathMCP, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		with(jsonHeaders, headerSessionID, cs.ID(), headerProtocolVersion, "2025-11-25"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("request with Redis down = %d (Retry-After %q) %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, _ = doRequest(t, http.MethodPost, r.srv.URL+PathMCP, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`, jsonHeaders)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("initialize with Redis down = %d, want 503", resp.StatusCode)
	}

	rdb.Restart()
	// Redis restarted empty: the old session is gone (404, re-initialize);
	// the gateway is ready again by itself.
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, _ = doRequest(t, http.MethodGet, r.srv.URL+PathReady, "", nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after Redis came back: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // go-redis reconnects on use; there is no event to wait on
	}
	if _, err := cs.ListTools(callCtx(t), nil); err == nil {
		t.Error("the session survived an empty Redis; want 404")
	} else if !strings.Contains(err.Error(), "not found") {
		t.Errorf("after Redis restarted empty: %v, want session not found", err)
	}
	fresh := connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25")
	if got := callText(t, fresh.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7}); got != "42" {
		t.Errorf("new session after Redis restart: %q", got)
	}
}

// recvTimeout waits for one value from ch.
func recvTimeout[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// redisCalls returns how many round trips the stores made to the Redis at
// addr: the commands a client sends (the ones a script runs inside EVAL
// are counted by Redis too, and left out here).
func redisCalls(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		switch name {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "hgetall", "del", "ping", "publish", "xrange":
		default:
			continue
		}
		if _, rest, ok := strings.Cut(line, "calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			total += n
		}
	}
	return total
}

// redisQuiet returns once the Redis at addr has had no round trips for
// 100ms: the list_changed notifications the SDK sends 10ms after a catalog
// change, and their writes to the sessions' event logs, are over. Nothing
// signals that nothing more is coming, so this one waits on time.
func redisQuiet(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for n := redisCalls(t, addr); ; {
		time.Sleep(100 * time.Millisecond)
		m := redisCalls(t, addr)
		if m == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis never went quiet: %d round trips in the last 100ms", m-n)
		}
		n = m
	}
}

// sseEvent is one event of a text/event-stream.
type sseEvent struct{ id, data string }

// readEvents sends the events of an SSE body to ch until it ends.
func readEvents(body io.Reader, ch chan<- sseEvent) {
	sc := bufio.NewScanner(body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		case line == "":
			if ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		}
	}
	close(ch)
}

// openStream opens a session's standalone stream on url, resuming after
// lastID if it is set.
func openStream(t *testing.T, ctx context.Context, url, sid, lastID string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	resp := getStream(t, ctx, url, sid, lastID)
	ch := make(chan sseEvent, 10)
	go readEvents(resp.Body, ch)
	return ch, resp
}

// getStream opens a session's GET stream, resuming after lastID if it is
// not empty, and fails the test unless it is open.
func getStream(t *testing.T, ctx context.Context, url, sid, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(headerSessionID, sid)
	req.Header.Set(headerProtocolVersion, "2025-11-25")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET stream: %d %s", resp.StatusCode, body)
	}
	return resp
}

// waitUntil polls cond until it holds, for a state that no event
// announces (what a replica has stored), and fails the test after
// waitTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// recvUpdate returns the next resources/updated event, passing over the
// list_changed notifications that the catalog's first build may queue on a
// new session's stream (the SDK sends them 10ms after a change, to every
// session open by then).
func recvUpdate(t *testing.T, events <-chan sseEvent, what string) sseEvent {
	t.Helper()
	for {
		e := recvTimeout(t, events, what)
		if !strings.Contains(e.data, "/list_changed") {
			return e
		}
	}
}

// A client that lost its stream, and whose session's replica died, resumes
// on another replica with Last-Event-ID and gets what it missed, from
// Redis, and nothing from before.
func TestLastEventIDOnAnotherReplica(t *testing.T) {
	rdb := redistest.Start(t)
	var upstreamSubs atomic.Int32
	watchURL := startSDKServer(t, watchServer(&upstreamSubs, make(chan struct{}, 10)), false)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{{Name: "w", Transport: TransportStreamableHTTP, URL: watchURL}})
	toucher := connect(t, rs[1].srv.URL+PathMCP, "streamable", "2025-11-25")
	toucher.waitTools(t, "w up", hasAll("w__touch"))
	connect(t, rs[0].srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "w up", hasAll("w__touch"))

	// A raw client on replica 0, subscribed to a.txt.
	url0 := rs[0].srv.URL + PathMCP
	resp, _ := doRequest(t, http.MethodPost, url0, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, jsonHeaders)
	sid := resp.Header.Get(headerSessionID)
	h := with(jsonHeaders, headerSessionID, sid, headerProtocolVersion, "2025-11-25")
	doRequest(t, http.MethodPost, url0, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)
	for i, uri := range []string{"w+file:///a.txt", "w+file:///b.txt"} {
		if resp, body := doRequest(t, http.MethodPost, url0, `{"jsonrpc":"2.0","id":`+strconv.Itoa(2+i)+`,"method":"resources/subscribe","params":{"uri":"`+uri+`"}}`, h); resp.StatusCode != 200 {
			t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
		}
	}
	touch := func(file string) {
		t.Helper()
		callText(t, toucher.ClientSession, "w__touch", map[string]any{"uri": "file:///" + file})
	}

	ctx, cancel := context.WithCancel(context.Background())
	events, stream := openStream(t, ctx, url0, sid, "")
	touch("a.txt")
	first := recvUpdate(t, events, "the first update")
	if !strings.Contains(first.data, "w+file:///a.txt") || first.id == "" {
		t.Fatalf("first event = %+v, want the update for a.txt, with an id", first)
	}
	cancel()
	stream.Body.Close()

	// Missed while the stream was closed; written to Redis by replica 0.
	// The update reaches replica 0 on the upstream's own stream, after the
	// call's answer reached replica 1: wait until replica 0 has stored it.
	touch("b.txt")
	waitUntil(t, "replica 0 has stored the update for b.txt", func() bool {
		rs[0].g.events.flush(context.Background(), func(streamKey) bool { return true })
		stored, err := rs[0].g.events.log.After(context.Background(), sid, "", "0")
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(stored, func(e sessionstore.Event) bool { return bytes.Contains(e.Data, []byte("w+file:///b.txt")) })
	})

	// Replica 0 dies; the client resumes on replica 1.
	rs[0].srv.CloseClientConnections()
	rs[0].srv.Listener.Close()
	rs[0].g.CloseSessions()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resumed, stream2 := openStream(t, ctx2, rs[1].srv.URL+PathMCP, sid, first.id)
	defer stream2.Body.Close()
	got := recvUpdate(t, resumed, "the missed update")
	if !strings.Contains(got.data, "w+file:///b.txt") {
		t.Errorf("replayed event = %+v, want the update for b.txt (and not the one for a.txt before it)", got)
	}
}

// A 2026-07-28 client has no session, so behind a plain balancer the retry
// of a call held on one replica (a 2025-era upstream asking mid-call) lands
// on any replica: it is forwarded to the one holding the call, which hands
// the answer to the waiting upstream. A holder that is gone makes the retry
// fail with a clear error.
func TestHeldCallAcrossReplicas(t *testing.T) {
	rdb := redistest.Start(t)
	url := startSDKServer(t, askServer(), false)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{{Name: "ask", Transport: TransportStreamableHTTP, URL: url, Sharing: SharingPerSession}})
	for _, r := range rs {
		connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "ask up", hasAll("ask__elicit"))
	}
	ctx := callCtx(t)
	first := modernClient(t, rs[0].srv.URL+PathMCP, true, nil, nil)
	second := modernClient(t, rs[1].srv.URL+PathMCP, true, nil, nil)
	ask := func() (state, key string) {
		t.Helper()
		res, err := first.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit"})
		if err != nil || !res.NeedsInput() || len(res.InputRequests) != 1 || !strings.HasPrefix(res.RequestState, heldPrefix) {
			t.Fatalf("ask__elicit on replica 0: %v, %+v; want one input request and a held state", err, res)
		}
		for k := range res.InputRequests {
			key = k
		}
		return res.RequestState, key
	}
	// retry answers on replica 1 what ask asked on replica 0.
	retry := func(state, key string) (*mcp.CallToolResult, error) {
		return second.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit", RequestState: state,
			InputResponses: mcp.InputResponseMap{key: &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "zed"}}}})
	}

	res, err := retry(ask())
	if err != nil {
		t.Fatalf("the retry on replica 1: %v", err)
	}
	if got := contentText(res.Content); res.NeedsInput() || got != "accept zed" {
		t.Errorf("the retry on replica 1 = %q (NeedsInput=%v), want %q from the call held on replica 0", got, res.NeedsInput(), "accept zed")
	}
	if n := rs[1].g.held.len(); n != 0 {
		t.Errorf("replica 1 holds %d calls, want none: the retry belongs to replica 0", n)
	}

	// The go-sdk client's own loop, through a round-robin balancer: each
	// retry lands on the other replica.
	lb := newBalancer(rs)
	auto := modernClient(t, rs[0].srv.URL+PathMCP, false, &http.Client{Transport: lb}, func(*mcp.ElicitParams) *mcp.ElicitResult {
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Grace"}}
	})
	for i := range 2 {
		if got := callText(t, auto, "ask__elicit", nil); got != "accept Grace" {
			t.Errorf("ask__elicit #%d through the balancer = %q, want %q", i, got, "accept Grace")
		}
	}

	// An expired state goes nowhere (the client's token with it): the
	// replica it lands on refuses it.
	state, key := ask()
	rs[1].g.states.now = func() time.Time { return time.Now().Add(time.Hour) }
	_, err = retry(state, key)
	rs[1].g.states.now = time.Now
	if code, msg := rpcError(t, err); code != -32602 || !strings.Contains(msg, "expired") {
		t.Errorf("a retry with an expired state: %d %q, want -32602 saying it expired", code, msg)
	}

	// The replica holding the call dies: the retry elsewhere fails, saying why.
	state, key = ask()
	rs[0].srv.CloseClientConnections()
	rs[0].srv.Listener.Close()
	_, err = retry(state, key)
	if code, msg := rpcError(t, err); code != -32602 || !strings.Contains(msg, "cannot be reached") || !strings.Contains(msg, "call again without inputResponses and requestState") {
		t.Errorf("a retry whose replica is gone: %d %q, want -32602 saying the holder cannot be reached and what to do", code, msg)
	}
}

// A replica that is shutting down leaves its sessions to the others: a
// request that still reaches it gets 503 with Retry-After (never 404, which
// would make the client start over), and the retry on another replica
// takes the session over.
func TestShuttingDownReplicaSendsSessionsOn(t *testing.T) {
	rdb := redistest.Start(t)
	rs := startReplicas(t, 2, rdb.URL(), []UpstreamConfig{demoUpstream("demo")})
	for _, r := range rs {
		connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	}
	resp, data := doRequest(t, http.MethodPost, rs[0].srv.URL+PathMCP, initBody, jsonHeaders)
	sid := resp.Header.Get(headerSessionID)
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s", resp.StatusCode, data)
	}
	h := with(jsonHeaders, headerSessionID, sid, headerProtocolVersion, "2025-11-25")
	doRequest(t, http.MethodPost, rs[0].srv.URL+PathMCP, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)

	rs[0].g.CloseSessions() // what SIGTERM does once the calls in flight are done
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	resp, data = doRequest(t, http.MethodPost, rs[0].srv.URL+PathMCP, ping, h)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a request to the replica shutting down: %d (Retry-After %q) %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	rs[0].srv.CloseClientConnections()
	rs[0].srv.Listener.Close()
	resp, data = doRequest(t, http.MethodPost, rs[1].srv.URL+PathMCP, ping, h)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"result"`)) {
		t.Errorf("the retry on replica 1: %d %s, want the session taken over", resp.StatusCode, data)
	}
}
