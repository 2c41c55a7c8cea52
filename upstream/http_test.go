package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// remoteTransports are the two remote transports, each with the go-sdk
// handler that serves it.
var remoteTransports = []struct {
	transport string
	handler   func(*mcp.Server) http.Handler
}{
	{TransportStreamableHTTP, func(s *mcp.Server) http.Handler {
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}},
	{TransportSSE, func(s *mcp.Server) http.Handler {
		return mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}},
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// stopServer ends an httptest server, cutting its hanging streams first
// (Close alone waits for them).
func stopServer(ts *httptest.Server) {
	ts.CloseClientConnections()
	ts.Close()
}

func TestRemoteConnect(t *testing.T) {
	headers := map[string]string{"Authorization": "Bearer t0ken", "X-Upstream-Test": "yes"}
	for _, tc := range remoteTransports {
		t.Run(tc.transport, func(t *testing.T) {
			check := newHeaderCheck(headers)
			ts := httptest.NewServer(check.wrap(tc.handler(newTestServer("remote", nil))))
			t.Cleanup(func() { stopServer(ts) })
			cfg := Config{Name: "remote", Transport: tc.transport, URL: ts.URL, Headers: headers}
			h := startUpstream(t, cfg, testOptions())
			up := h.waitUp(t)

			if !sameCatalog(up.catalog, wantCatalog()) {
				t.Errorf("Catalog() = %v, want %v (every page of every list)", catalogNames(up.catalog), wantCatalog())
			}
			if st := h.u.Status(); st.State != StateUp || st.PID != 0 || st.Restarts != 0 {
				t.Errorf("Status() = %+v, want up, no PID, no restarts", st)
			}
			// The handshake's context ended before the upstream reported
			// up; the connection must outlive it.
			if got := callText(t, h.u, "tool_1", nil); got != "tool_1" {
				t.Errorf("tool_1() = %q, want %q", got, "tool_1")
			}
			if st := h.u.Status(); st.State != StateUp {
				t.Errorf("Status() after the call = %+v, want up", st)
			}

			if err := h.u.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			n, missing := check.result()
			if n < 5 {
				t.Errorf("server saw %d requests, want at least 5", n)
			}
			for _, m := range missing {
				t.Errorf("request without the static headers: %s", m)
			}
		})
	}
}

func TestRemoteListChanged(t *testing.T) {
	for _, tc := range remoteTransports {
		t.Run(tc.transport, func(t *testing.T) {
			reads := make(chan struct{}, 100)
			server := newTestServer("remote", func() { reads <- struct{}{} })
			check := newHeaderCheck(nil)
			ts := httptest.NewServer(check.wrap(tc.handler(server)))
			t.Cleanup(func() { stopServer(ts) })
			h := startUpstream(t, Config{Name: "remote", Transport: tc.transport, URL: ts.URL}, testOptions())
			h.waitUp(t)
			recv(t, reads, "the initial catalog read")
			// Notifications go on the GET stream; it must be listening.
			recv(t, check.getFlushed, "the GET stream")

			// An unchanged list: the notification triggers a read, which
			// changes nothing and so must not call OnChange.
			addEchoTool(server, "tool_0")
			recv(t, reads, "the refresh after an unchanged list_changed")
			// The same, asked for directly.
			h.u.Refresh()
			recv(t, reads, "the refresh asked for by Refresh")

			// A real change. The supervisor reads the catalog in order, so
			// had the unchanged reads above called OnChange, those calls
			// would come first.
			addEchoTool(server, "tool_new")
			s := h.nextChange(t, "the changed catalog")
			if s.status.State != StateUp || !sameCatalog(s.catalog, wantCatalog("tool_new")) {
				t.Errorf("first OnChange after list_changed: state %q, catalog %v; want up with %v",
					s.status.State, catalogNames(s.catalog), wantCatalog("tool_new"))
			}
			if got := callText(t, h.u, "tool_new", nil); got != "tool_new" {
				t.Errorf("tool_new() = %q, want %q", got, "tool_new")
			}
		})
	}
}

// TestRemoteHandshakeTimeout: Config.Timeout bounds connecting to a server
// that accepts the connection and then says nothing.
func TestRemoteHandshakeTimeout(t *testing.T) {
	for _, tc := range remoteTransports {
		t.Run(tc.transport, func(t *testing.T) {
			release := make(chan struct{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			t.Cleanup(func() { close(release); stopServer(ts) })
			h := startUpstream(t, Config{Name: "mute", Transport: tc.transport, URL: ts.URL, Timeout: 100 * time.Millisecond}, testOptions())

			h.logs.wait(t, "a failed connect", 2, isMsg("upstream connect failed"))
			st := h.u.Status()
			if st.State != StateDown || !errors.Is(st.LastError, context.DeadlineExceeded) {
				t.Errorf("Status() = %+v, want down with a LastError wrapping context.DeadlineExceeded", st)
			}
		})
	}
}

// TestRemoteDownThenUp follows a remote server that is down at start, comes
// up, goes away and comes back, on one address.
func TestRemoteDownThenUp(t *testing.T) {
	for _, tc := range remoteTransports {
		t.Run(tc.transport, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // connections are refused now

			h := startUpstream(t, Config{Name: "flaky", Transport: tc.transport, URL: "http://" + addr}, testOptions())
			h.logs.wait(t, "a failed connect", 2, isMsg("upstream connect failed"))
			st := h.u.Status()
			if st.State != StateDown || st.LastError == nil || !strings.Contains(st.LastError.Error(), "connection refused") {
				t.Errorf("Status() while refused = %+v, want down with a LastError saying connection refused", st)
			}
			if _, err := h.u.Session(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `"flaky"`) {
				t.Errorf("Session() while refused = %v, want ErrUnavailable naming the upstream", err)
			}

			serve := func() *httptest.Server {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("cannot listen on %s again: %v", addr, err)
				}
				ts := httptest.NewUnstartedServer(tc.handler(newTestServer("remote", nil)))
				ts.Listener.Close()
				ts.Listener = ln
				ts.Start()
				t.Cleanup(func() { h.u.Close(); stopServer(ts) })
				return ts
			}
			ts := serve()
			up := h.waitUp(t)
			if up.status.Restarts != 0 || !sameCatalog(up.catalog, wantCatalog()) {
				t.Errorf("first connect: Status() = %+v, catalog %v; want no restarts and the full catalog", up.status, catalogNames(up.catalog))
			}
			if got := callText(t, h.u, "tool_2", nil); got != "tool_2" {
				t.Errorf("tool_2() = %q, want %q", got, "tool_2")
			}

			stopServer(ts)
			down := h.nextChange(t, "the server going away")
			if down.status.State != StateDown || !emptyCatalog(down.catalog) || !errors.Is(down.sessErr, ErrUnavailable) {
				t.Errorf("after the server went away: status %+v, catalog %v, Session() error %v; want down, empty, ErrUnavailable",
					down.status, catalogNames(down.catalog), down.sessErr)
			}

			serve()
			again := h.waitUp(t)
			if again.status.Restarts != 1 || !sameCatalog(again.catalog, wantCatalog()) {
				t.Errorf("reconnect: Status() = %+v, catalog %v; want 1 restart and the full catalog", again.status, catalogNames(again.catalog))
			}
			if got := callText(t, h.u, "tool_3", nil); got != "tool_3" {
				t.Errorf("tool_3() = %q, want %q", got, "tool_3")
			}
		})
	}
}

// headerCheck is HTTP middleware that records whether every request carried
// the wanted headers, and announces when the first GET response (the
// Streamable HTTP standalone stream, or the SSE stream) is flushed.
type headerCheck struct {
	want map[string]string

	getFlushed chan struct{} // closed at the first flush of a GET response
	flushOnce  sync.Once

	mu       sync.Mutex // guards the fields below
	requests int
	missing  []string // "METHOD path: header" for each absent or wrong header
}

func newHeaderCheck(want map[string]string) *headerCheck {
	return &headerCheck{want: want, getFlushed: make(chan struct{})}
}

func (c *headerCheck) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests++
		for k, v := range c.want {
			if got := r.Header.Get(k); got != v {
				c.missing = append(c.missing, fmt.Sprintf("%s %s: %s = %q, want %q", r.Method, r.URL, k, got, v))
			}
		}
		c.mu.Unlock()
		if r.Method == http.MethodGet {
			w = &flushNotifier{ResponseWriter: w, c: c}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *headerCheck) result() (requests int, missing []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, slices.Clone(c.missing)
}

type flushNotifier struct {
	http.ResponseWriter
	c *headerCheck
}

func (f *flushNotifier) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	f.c.flushOnce.Do(func() { close(f.c.getFlushed) })
}

func (f *flushNotifier) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// An upstream that stops answering pings is reconnected: health is the
// answer to a ping, not an open socket.
func TestPingReconnectsHungUpstream(t *testing.T) {
	var hang atomic.Bool
	// Pings the client gave up on are released before the server stops,
	// which waits for its handlers.
	release := make(chan struct{})
	s := newTestServer("hung", nil)
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "ping" && hang.Load() {
				select {
				case <-ctx.Done():
				case <-release:
				}
				return nil, errors.New("hung")
			}
			return next(ctx, method, req)
		}
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() { stopServer(ts) })
	t.Cleanup(func() { close(release) })
	cfg := Config{Name: "hung", Transport: TransportStreamableHTTP, URL: ts.URL, PingInterval: 40 * time.Millisecond}
	h := startUpstream(t, cfg, testOptions())
	h.waitUp(t)

	hang.Store(true)
	down := h.waitChange(t, "the hung upstream to be dropped", func(s snapshot) bool { return s.status.State != StateUp })
	if down.status.LastError == nil {
		t.Errorf("status after missed pings = %+v, want the cause", down.status)
	}
	hang.Store(false)
	up := h.waitUp(t)
	if up.status.Restarts < 1 {
		t.Errorf("status after reconnecting = %+v, want a restart counted", up.status)
	}
}
