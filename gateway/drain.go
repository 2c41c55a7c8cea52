package gateway

// Draining: on shutdown the gateway stops being ready at once, lets the
// requests in flight finish within a grace period, then ends the sessions'
// streams and stops the upstreams. A subscriptions/listen request is a
// stream, not work in flight, and does not hold shutdown up.

import (
	"context"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// inflight counts MCP requests being handled.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while n is 0
}

func (f *inflight) begin() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
}

func (f *inflight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.zero)
		f.zero = nil
	}
}

// wait returns when no request is in flight, or with ctx's error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	zero := f.zero
	f.mu.Unlock()
	if zero == nil {
		return nil
	}
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countInflight is the receiving middleware that counts requests.
func (g *Gateway) countInflight(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "subscriptions/listen" {
			return next(ctx, method, req)
		}
		g.inflight.begin()
		defer g.inflight.end()
		// The SDK does not end a handler's context when its session closes;
		// ending the gateway's calls (EndCalls) does.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.calls, cancel)()
		return next(ctx, method, req)
	}
}

// BeginShutdown makes the gateway unready (readiness 503), so that load
// balancers stop sending it work; it goes on serving what still arrives.
func (g *Gateway) BeginShutdown() { g.draining.Store(true) }

// Drain waits until the MCP requests in flight have finished, or ctx ends
// (the grace period); it returns ctx's error in that case.
func (g *Gateway) Drain(ctx context.Context) error { return g.inflight.wait(ctx) }

// EndCalls cancels every MCP request still being handled (and so their
// upstream calls, with notifications/cancelled): the end of the grace
// period.
func (g *Gateway) EndCalls() { g.endCalls() }
