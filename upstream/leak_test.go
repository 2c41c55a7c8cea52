package upstream

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCloseLeavesNothingBehind runs upstreams of every kind and state, closes
// them, and checks that the goroutines and file descriptors they used are all
// released.
func TestCloseLeavesNothingBehind(t *testing.T) {
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	var servers []*httptest.Server
	cfgs := []Config{
		helperConfig("stdio", "server"),
		helperConfig("crashing", "crash"),
	}
	for _, tc := range remoteTransports {
		ts := httptest.NewServer(tc.handler(newTestServer("remote", nil)))
		servers = append(servers, ts)
		cfgs = append(cfgs, Config{Name: tc.transport, Transport: tc.transport, URL: ts.URL})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	cfgs = append(cfgs, Config{Name: "refused", Transport: TransportStreamableHTTP, URL: refused})

	var hs []*harness
	for _, cfg := range cfgs {
		h := newHarness(cfg, testOptions())
		h.u.Start()
		hs = append(hs, h)
	}
	for _, h := range hs {
		switch h.u.Name() {
		case "crashing", "refused":
			h.logs.wait(t, "a failed connect", 2, isMsg("upstream connect failed"))
		default:
			h.waitUp(t)
			callText(t, h.u, "tool_0", nil)
		}
	}

	// Close them all at once, as the gateway does.
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() { h.u.Close() })
	}
	wg.Wait()
	for _, ts := range servers {
		stopServer(ts)
	}
	// Connections to the closed servers wait in the shared pool; they are
	// not the upstreams' to close.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	// Goroutines that are on their way out need a moment to finish.
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > goroutines || openFDs(t) > fds {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("after Close: %d goroutines (had %d), %d open files (had %d); goroutines:\n%s",
				runtime.NumGoroutine(), goroutines, openFDs(t), fds, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	n := 0
	for _, e := range ents {
		// The directory being read is one of them.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(target, fmt.Sprintf("/proc/%d/fd", os.Getpid())) {
			n++
		}
	}
	return n
}
