package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// postCall sends one raw tools/call body on session sid and returns the
// response, whose body the caller reads (it is closed at cleanup).
func postCall(t *testing.T, url, sid, version, body string) *http.Response {
	t.Helper()
	resp, err := tryPostCall(t, url, sid, version, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tryPostCall is postCall for a goroutine of the test's own: it returns
// the error rather than failing the test.
func tryPostCall(t *testing.T, url, sid, version, body string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(callCtx(t), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(headerSessionID, sid)
	req.Header.Set(headerProtocolVersion, version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, nil
}

// answerOf reads the one JSON-RPC message of a POST's answer, whether a
// JSON body or an event stream.
func answerOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") == "application/json" {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return d
		}
	}
	t.Fatal("no answer on the stream")
	return ""
}

// A quick tools/call on a 2025-era session is answered with a JSON body.
func TestFastCallAnswersJSON(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	resp := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":"x<1>","method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var msg struct {
		Version string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  struct {
			Content []struct{ Type, Text string } `json:"content"`
		} `json:"result"`
	}
	d := answerOf(t, resp)
	if err := json.Unmarshal([]byte(d), &msg); err != nil || msg.Version != "2.0" || string(msg.ID) != `"x<1>"` ||
		len(msg.Result.Content) != 1 || msg.Result.Content[0] != (struct{ Type, Text string }{"text", "42"}) {
		t.Errorf("answer %s: %v", d, err)
	}
}

// A tools/call on a 2025-era session that takes longer than the keep-alive
// interval gets an event stream at once, keep-alive comments while it runs,
// and then its response, with the request's id as the client wrote it.
func TestFastCallKeepsAliveAndAnswers(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run("fast_path="+strconv.FormatBool(fast), func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan struct{}, 1)
			url := startSDKServer(t, waitServer(release, started), false)
			tg := startGateway(t, []UpstreamConfig{{Name: "s", Transport: TransportStreamableHTTP, URL: url}}, func(c *Config, o *Options) {
				c.FastPath = &fast
				o.KeepAlive = 20 * time.Millisecond
			})
			cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
			cs.waitTools(t, "s up", hasAll("s__wait"))

			resp := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"s__wait","arguments":{}}}`)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("response: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			recvTimeout(t, started, "the call to reach the upstream")
			sc := bufio.NewScanner(resp.Body)
			var data string
			released := false
			for sc.Scan() {
				line := sc.Text()
				if line == ": keep-alive" && !released {
					close(release)
					released = true
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok && d != "" {
					data = d
					break
				}
			}
			if !released {
				t.Fatal("no keep-alive comment before the answer")
			}
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Result struct {
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			if err := json.Unmarshal([]byte(data), &msg); err != nil || string(msg.ID) != `"call-1"` ||
				len(msg.Result.Content) != 1 || msg.Result.Content[0].Text != "done <ok>" {
				t.Fatalf("answer %q: %v", data, err)
			}
			// The session is still in use, through the SDK's path too.
			if _, err := cs.ListTools(callCtx(t), nil); err != nil {
				t.Errorf("tools/list after a long call: %v", err)
			}
		})
	}
}

// waitServer's tool "wait" tells started that a call began, and answers
// "done <ok>" when release lets it.
func waitServer(release <-chan struct{}, started chan<- struct{}) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "slow", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "wait", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done <ok>"}}}, nil
	})
	return s
}

// sseFrame is one event of a stream as written (comments left out).
type sseFrame struct {
	event, index, data string
	hasData            bool
}

// readFrame reads the next event of a stream.
func readFrame(t *testing.T, sc *bufio.Scanner) sseFrame {
	t.Helper()
	var f sseFrame
	fields := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if fields {
				return f
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			f.event, fields = line[len("event: "):], true
		case strings.HasPrefix(line, "id: "):
			f.index, fields = line[len("id: "):], true
		case strings.HasPrefix(line, "data: "):
			f.data, f.hasData, fields = line[len("data: "):], true, true
		}
	}
	t.Fatalf("the stream ended before an event (%v)", sc.Err())
	return f
}

// With Redis, where the SDK's streams are resumable, so is the stream of a
// fast call that outlives the keep-alive interval: a priming event as the
// SDK writes them (an id and an empty data field), then the response with
// the next id. A client that loses the stream resumes it with GET and
// Last-Event-ID, while the call runs (the stream goes on there) or after it
// ended (the response is replayed from the store).
//
// (The SDK's own path sends no priming event here: the SDK learns a
// request's revision from a context key that only its own HTTP handler
// sets, and the gateway serves sessions with the SDK's transport, not that
// handler. Its events have ids from the first message on.)
func TestFastCallStreamResumes(t *testing.T) {
	rdb := redistest.Start(t)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	url := startSDKServer(t, waitServer(release, started), false)

	frames := func() []sseFrame {
		tg := startGateway(t, []UpstreamConfig{{Name: "s", Transport: TransportStreamableHTTP, URL: url}}, func(c *Config, o *Options) {
			c.SessionStore.Type = "redis"
			c.SessionStore.Redis = &RedisConfig{URL: rdb.URL(), Prefix: "test:" + t.Name() + ":"}
			o.KeepAlive = 20 * time.Millisecond
		})
		cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
		cs.waitTools(t, "s up", hasAll("s__wait"))
		var out []sseFrame
		// lose posts a call, reads its stream up to the priming event, and
		// drops the connection.
		lose := func(id string) (lastID string) {
			t.Helper()
			resp := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":"`+id+`","method":"tools/call","params":{"name":"s__wait","arguments":{}}}`)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("response: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			recvTimeout(t, started, "the call to reach the upstream")
			prime := readFrame(t, bufio.NewScanner(resp.Body))
			resp.Body.Close()
			lastID = prime.index
			prime.index = prime.index[strings.IndexByte(prime.index, '_'):]
			out = append(out, prime)
			return lastID
		}
		resume := func(lastID string) {
			t.Helper()
			resp := getStream(t, callCtx(t), tg.mcpURL(), cs.ID(), lastID)
			defer resp.Body.Close()
			f := readFrame(t, bufio.NewScanner(resp.Body))
			f.index = f.index[strings.IndexByte(f.index, '_'):]
			out = append(out, f)
		}

		// Resumed while the call runs.
		lastID := lose("call-1")
		go func() { release <- struct{}{} }()
		resume(lastID)

		// Resumed after the call ended.
		lastID = lose("call-2")
		release <- struct{}{}
		stream, _, _ := strings.Cut(lastID, "_")
		waitUntil(t, "the answer to call-2 is stored", func() bool {
			stored, _ := tg.g.events.local.After(context.Background(), cs.ID(), stream, "1")
			return len(stored) > 0
		})
		resume(lastID)
		return out
	}

	got := frames()
	prime := sseFrame{event: "prime", index: "_0", hasData: true}
	for i, id := range []string{"call-1", "call-2"} {
		if got[2*i] != prime {
			t.Errorf("%s: first event = %+v, want %+v", id, got[2*i], prime)
		}
		if f := got[2*i+1]; f.event != "message" || f.index != "_1" || !strings.Contains(f.data, `"id":"`+id+`"`) || !strings.Contains(f.data, "done \\u003cok\\u003e") {
			t.Errorf("%s: event on the resumed stream = %+v, want the answer, with index _1", id, f)
		}
	}
}

// Errors on the fast path are the JSON-RPC errors of the SDK's: an
// upstream's own error passes through, with the request's numeric id.
func TestFastCallErrors(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	for _, c := range []struct{ name, body, want string }{
		{"bad arguments", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":"x"}}}`, `"id":7`},
		{"unknown tool", `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"demo__nope"}}`, `unknown tool`},
		{"params not an object", `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":[1]}`, `"id":9`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := answerOf(t, postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", c.body))
			if !strings.Contains(d, c.want) || !strings.Contains(d, `"error"`) && !strings.Contains(d, `"isError":true`) {
				t.Errorf("answer %s, want an error with %s", d, c.want)
			}
		})
	}
	// The session goes on.
	if got := callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7}); got != "42" {
		t.Errorf("multiply after the errors = %q", got)
	}
}

// A proxied tools/call is cheap in allocations: the fast path decodes the
// request once, not the SDK's six times with a 32 KiB buffer each. The
// bound is the gateway's whole share, upstream client included (measured
// at about 140 KB on this path, 350 KB on the SDK's).
func TestFastCallAllocations(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	call := func(i int) {
		resp := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":`+strconv.Itoa(i)+`,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"text":"42"`) {
			t.Fatalf("call %d: %s", i, b)
		}
	}
	for i := range 20 {
		call(i) // warm: connections, pools
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		call(100 + i)
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes, %d allocations per call (test client included)", perCall, (after.Mallocs-before.Mallocs)/n)
	if perCall > 250<<10 {
		t.Errorf("a proxied call allocates %d KB, want at most 250 KB", perCall>>10)
	}
}

// post2026 sends one raw 2026-07-28 request (no session) with the headers
// the revision asks for.
func post2026(t *testing.T, url, method, name, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(callCtx(t), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(headerProtocolVersion, version20260728)
	req.Header.Set("Mcp-Method", method)
	req.Header.Set("Mcp-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const meta2026 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`

// A 2026-07-28 tools/call is answered as the SDK answers it: resultType,
// the gateway's serverInfo, the request's id; input_required results carry
// their requests and state; protocol-level errors their HTTP status; and
// malformed requests get the SDK's own errors.
func TestFastStatelessCall(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply", "demo__greet"))
	type answer struct {
		ID     json.RawMessage `json:"id"`
		Result struct {
			ResultType    string                     `json:"resultType"`
			Content       []struct{ Text string }    `json:"content"`
			Meta          map[string]json.RawMessage `json:"_meta"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
			RequestState  string                     `json:"requestState"`
		} `json:"result"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	decode := func(resp *http.Response) answer {
		t.Helper()
		var a answer
		d := answerOf(t, resp)
		if err := json.Unmarshal([]byte(d), &a); err != nil {
			t.Fatalf("answer %s: %v", d, err)
		}
		return a
	}

	a := decode(post2026(t, tg.mcpURL(), "tools/call", "demo__multiply", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7},`+meta2026+`}}`))
	if string(a.ID) != "3" || a.Result.ResultType != "complete" || len(a.Result.Content) != 1 || a.Result.Content[0].Text != "42" ||
		!strings.Contains(string(a.Result.Meta[mcp.MetaKeyServerInfo]), `"mcp-gateway"`) {
		t.Errorf("multiply: %+v", a)
	}

	a = decode(post2026(t, tg.mcpURL(), "tools/call", "demo__greet", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"demo__greet",`+meta2026+`}}`))
	if a.Result.ResultType != "input_required" || len(a.Result.InputRequests) != 1 || a.Result.RequestState == "" || a.Result.Content != nil {
		t.Errorf("greet: %+v", a)
	}

	// The Mcp-Name header does not match the body: the SDK's 400.
	resp := post2026(t, tg.mcpURL(), "tools/call", "demo__other", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":1,"b":2},`+meta2026+`}}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("mismatched Mcp-Name: status %d, want 400", resp.StatusCode)
	}
	// No client capabilities in _meta: the SDK's -32602.
	resp = post2026(t, tg.mcpURL(), "tools/call", "demo__multiply", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":1,"b":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "clientCapabilities") {
		t.Errorf("no capabilities: %d %s", resp.StatusCode, b)
	}
}

// normalized decodes a JSON-RPC answer for comparison, without the parts
// that differ between any two answers (sealed request states).
func normalized(t *testing.T, d string) any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(d), &v); err != nil {
		t.Fatalf("answer %s: %v", d, err)
	}
	if res, ok := v["result"].(map[string]any); ok {
		if _, ok := res["requestState"]; ok {
			res["requestState"] = "sealed"
		}
	}
	return v
}

// sameAnswers sends one request to each gateway (send) and requires the
// same HTTP status and the same answer from both.
func sameAnswers(t *testing.T, gws [2]*testGateway, send func(*testGateway) *http.Response) {
	t.Helper()
	var got [2]any
	var status [2]int
	for i, tg := range gws {
		resp := send(tg)
		status[i] = resp.StatusCode
		if resp.StatusCode == http.StatusOK {
			got[i] = normalized(t, answerOf(t, resp))
		} else {
			b, _ := io.ReadAll(resp.Body)
			got[i] = strings.TrimSpace(string(b))
		}
	}
	if status[0] != status[1] || !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("fast path answered %d\n%v\nthe SDK's path %d\n%v", status[0], got[0], status[1], got[1])
	}
}

// The fast path answers exactly what the SDK's path answers, for 2025-era
// sessions and 2026-07-28 requests: results, tool errors, protocol errors,
// calls given back for input, input_required results, and the HTTP status.
func TestFastPathAnswersAsTheSDKPath(t *testing.T) {
	var gws [2]*testGateway
	for i, fast := range []bool{true, false} {
		gws[i] = startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, _ *Options) { c.FastPath = &fast })
		connect(t, gws[i].mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply", "demo__greet"))
	}
	deep := strings.Repeat("[", 1500) + strings.Repeat("]", 1500)
	calls := []struct{ what, name, params string }{
		{"result", "demo__multiply", `{"name":"demo__multiply","arguments":{"a":6,"b":7}}`},
		{"bad arguments", "demo__multiply", `{"name":"demo__multiply","arguments":{"a":"six"}}`},
		{"structured result", "demo__get_alerts", `{"name":"demo__get_alerts","arguments":{"state":"CA"}}`},
		{"HTML characters", "demo__search_memory", `{"name":"demo__search_memory","arguments":{"query":"<nothing & none>"}}`},
		{"input round trip", "demo__greet", `{"name":"demo__greet"}`},
		{"unknown tool", "demo__nope", `{"name":"demo__nope"}`},
		// Bad input: field names are matched case-sensitively, as the
		// SDK matches them; nesting past the SDK's limit is refused
		// before it reaches an upstream.
		{"upper-case name", "demo__multiply", `{"NAME":"demo__multiply","arguments":{"a":6,"b":7}}`},
		{"two names", "demo__multiply", `{"name":"demo__greet","Name":"demo__multiply"}`},
		{"two arguments", "demo__multiply", `{"name":"demo__multiply","Arguments":{"a":6,"b":7},"arguments":{"a":1,"b":1}}`},
		{"deep nesting", "demo__multiply", `{"name":"demo__multiply","arguments":{"a":6,"b":7,"deep":` + deep + `}}`},
	}
	for _, c := range calls {
		t.Run("2025-11-25 "+c.what, func(t *testing.T) {
			sameAnswers(t, gws, func(tg *testGateway) *http.Response {
				cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
				return postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`+c.params+`}`)
			})
		})
		t.Run("2026-07-28 "+c.what, func(t *testing.T) {
			params := strings.TrimSuffix(c.params, "}") + "," + meta2026 + "}"
			sameAnswers(t, gws, func(tg *testGateway) *http.Response {
				return post2026(t, tg.mcpURL(), "tools/call", c.name, `{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":`+params+`}`)
			})
		})
	}

	// Requests that differ from the usual in their envelope or headers.
	envelopes := []struct {
		name, body string
		header     http.Header
		stateless  bool
	}{
		{"id 1.0", `{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, nil, false},
		{"escaped string id", `{"jsonrpc":"2.0","id":"\u0041","method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, nil, false},
		{"upper-case envelope", `{"JSONRPC":"2.0","ID":1,"METHOD":"tools/call","PARAMS":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, nil, false},
		{"Last-Event-ID on a POST", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, http.Header{"Last-Event-Id": {"x"}}, false},
		{"2026 client info with bad icons", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"x","version":"1","icons":"bad"}}}}`, nil, true},
		{"2026 capabilities in the wrong case", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"_META":{"io.modelcontextprotocol/clientCapabilities":{}}}}`, nil, true},
		{"2026 roots capability of the wrong type", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":"yes"}}}}}`, nil, true},
	}
	for _, c := range envelopes {
		t.Run(c.name, func(t *testing.T) {
			sameAnswers(t, gws, func(tg *testGateway) *http.Response {
				if c.stateless {
					return post2026(t, tg.mcpURL(), "tools/call", "demo__multiply", c.body)
				}
				cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
				req, _ := http.NewRequestWithContext(callCtx(t), http.MethodPost, tg.mcpURL(), strings.NewReader(c.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set(headerSessionID, cs.ID())
				req.Header.Set(headerProtocolVersion, "2025-11-25")
				for k, v := range c.header {
					req.Header[k] = v
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			})
		})
	}
}

// A call given back to the SDK's path for the client's input is not run
// again upstream: the SDK's path goes on from the round the fast path
// got, so the upstream sees as many rounds as on the SDK's path.
func TestFastCallGivenBackRunsOnce(t *testing.T) {
	var rounds [2]float64
	for i, fast := range []bool{true, false} {
		tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, _ *Options) { c.FastPath = &fast })
		connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__greet"))
		c := mcp.NewClient(&mcp.Implementation{Name: "greeter", Version: "1"}, &mcp.ClientOptions{
			ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				return answerGreet("Ada")(req.Params), nil
			},
		})
		cs, err := c.Connect(callCtx(t), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		if got := callText(t, cs, "demo__greet", nil); !strings.Contains(got, "Hello, Ada!") {
			t.Fatalf("greet = %q", got)
		}
		rounds[i], _ = sample(scrape(t, tg.g.MetricsHandler(), ""), "mcpgw_upstream_requests_total",
			"upstream", "demo", "method", "tools/call", "outcome", "input_required")
	}
	if rounds[0] != rounds[1] || rounds[1] == 0 {
		t.Errorf("upstream input_required rounds: %v with the fast path, %v without", rounds[0], rounds[1])
	}
}

// A second fast call with the id of one in flight is refused as the SDK
// refuses it, and notifications/cancelled still cancels the first.
func TestFastCallDuplicateID(t *testing.T) {
	started, cancelled := make(chan struct{}, 2), make(chan struct{}, 2)
	url := startSDKServer(t, blockServer(started, cancelled), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "b", Transport: TransportStreamableHTTP, URL: url}})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "b up", hasAll("b__block"))
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := tryPostCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"b__block"}}`)
		if err != nil {
			t.Error(err)
		}
		first <- resp
	}()
	recvTimeout(t, started, "the first call to reach the upstream")
	resp := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"b__block"}}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "duplicate in-flight request ID 7") {
		t.Errorf("second call with id 7: %d %s", resp.StatusCode, b)
	}
	cancel := postCall(t, tg.mcpURL(), cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`)
	if cancel.StatusCode != http.StatusAccepted {
		t.Errorf("notifications/cancelled: status %d", cancel.StatusCode)
	}
	recvTimeout(t, cancelled, "the first call to be cancelled upstream")
	resp = recvTimeout(t, first, "the first call's answer")
	if resp == nil {
		return
	}
	if d := answerOf(t, resp); !strings.Contains(d, `"error"`) {
		t.Errorf("the cancelled call answered %s", d)
	}
}
