package gateway

// Micro-benchmarks of the hot paths (go test -bench . ./gateway): public
// name and URI lookups in a catalog of 5000 tools and 50 prefixes, result
// rewriting, the front door's checks and fast-path decoding of a POST, and
// session lookup. The end-to-end numbers are cmd/gateway-bench's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchCatalog is a catalog of 50 prefixed mounts with 100 tools and 10
// resources each, its tables filled as a rebuild fills them.
func benchCatalog() (*catalog, []string) {
	var mounts []*mount
	for i := range 50 {
		mounts = append(mounts, &mount{name: fmt.Sprintf("up%02d", i), prefix: fmt.Sprintf("up%02d", i)})
	}
	c := newCatalog(nil, mounts, "__", 64, nil, handlers{})
	var names []string
	for _, m := range mounts {
		for j := range 100 {
			name := fmt.Sprintf("tool_%03d", j)
			pub := publicName(m.prefix, c.sep, name, c.max)
			c.tools[pub] = toolEntry{route: route{m, name}, tool: &mcp.Tool{Name: pub}}
			names = append(names, pub)
		}
		for j := range 10 {
			uri := fmt.Sprintf("file:///docs/%d.txt", j)
			c.resources[publicURI(m.prefix, uri)] = resourceEntry{route{m, uri}, &mcp.Resource{URI: publicURI(m.prefix, uri)}}
		}
	}
	return c, names
}

func BenchmarkPublicName(b *testing.B) {
	for b.Loop() {
		publicName("github", "__", "create_pull_request", 64)
	}
}

func BenchmarkToolLookup(b *testing.B) {
	c, names := benchCatalog()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := c.tool(names[i%len(names)]); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.tool(names[i%len(names)])
				i++
			}
		})
	})
}

func BenchmarkResolveURI(b *testing.B) {
	c, _ := benchCatalog()
	for _, uri := range []string{
		"up42+file:///docs/3.txt",         // a listed resource
		"up42+file:///elsewhere/link.txt", // under a prefix, not listed (a link in a result)
	} {
		b.Run(strings.SplitN(uri, "/", 4)[3], func(b *testing.B) {
			for b.Loop() {
				if _, ok := c.resolveURI(uri); !ok {
					b.Fatal("not resolved")
				}
			}
		})
	}
}

// BenchmarkRewriteContent rewrites the URIs of a tool result with a text
// block, a resource link and an embedded resource.
func BenchmarkRewriteContent(b *testing.B) {
	m := &mount{name: "docs", prefix: "docs"}
	link := &mcp.ResourceLink{URI: "file:///a.txt", Name: "a"}
	embedded := &mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "file:///b.txt", Text: "b"}}
	content := []mcp.Content{&mcp.TextContent{Text: "see the links"}, link, embedded}
	for b.Loop() {
		link.URI, embedded.Resource.URI = "file:///a.txt", "file:///b.txt"
		m.rewriteContent(content)
	}
}

const benchCallBody = `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"up42__tool_007","arguments":{"a":6,"b":7,"note":"a short argument"}}}`

// BenchmarkFrontDoorCheck is the front door's check of a POST body
// (readMessages: size, JSON validity, JSON-RPC shape) before routing.
func BenchmarkFrontDoorCheck(b *testing.B) {
	body := []byte(benchCallBody)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Body: io.NopCloser(strings.NewReader(string(body)))}
		if _, _, ok := readMessages(w, r); !ok {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkFastPathCodec is what the fast path adds per call: decoding the
// params and encoding the response.
func BenchmarkFastPathCodec(b *testing.B) {
	msg, ok := decodeWire(json.RawMessage(benchCallBody))
	if !ok {
		b.Fatal("bad message")
	}
	res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "42"}}}
	b.ReportAllocs()
	for b.Loop() {
		var p fastParams
		if err := json.Unmarshal(msg.params, &p); err != nil {
			b.Fatal(err)
		}
		encodeResponse(msg.id, res, nil)
	}
}

// BenchmarkSessionLookup finds a live session of this replica for a
// request, as every sessionful request does (memory store: the touch that
// extends the session's TTL included).
func BenchmarkSessionLookup(b *testing.B) {
	tg := startGateway(b, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(b, tg.mcpURL(), "streamable", "2025-11-25")
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, PathMCP, nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if tg.g.sessions.find(w, r, cs.ID()) == nil {
			b.Fatal("session not found")
		}
	}
}
