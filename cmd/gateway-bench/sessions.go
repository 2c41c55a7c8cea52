// Scenario 5: what an idle session costs, and how many SSE streams one
// gateway process holds.
//
// Sessions are opened with plain HTTP requests (raw.go), not go-sdk
// clients, so that the client side keeps next to nothing in this process: a
// Streamable HTTP session is just its id (its requests share a few pooled
// connections), and a stream is one raw TCP connection that is never read
// again once the stream is established. The one thing the client does
// keep per stream, its end of the TCP connection, is measured separately
// (rawConnCost) and subtracted.
//
// Memory is counted as heap (HeapInuse) plus goroutine stacks (StackInuse)
// after garbage collection, and measured incrementally: every batch of
// sessions stays open while the next is measured, so no measurement waits
// for another's teardown.

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/gateway"
)

// Targets of scenario 5, in bytes (1 KB = 1024 bytes).
const (
	idleSessionTarget   = 25 << 10
	streamSessionTarget = 60 << 10
	streamsTarget       = 10000
)

// openWorkers is how many sessions or streams are opened at once.
const openWorkers = 16

// streamTimeout bounds establishing one stream.
const streamTimeout = 15 * time.Second

// holdBudget bounds the whole attempt to open the SSE streams.
func (b *bench) holdBudget() time.Duration {
	if b.s.quick {
		return 30 * time.Second
	}
	return 5 * time.Minute
}

// scenarioSessions is scenario 5.
func (b *bench) scenarioSessions(ctx context.Context, res *ScenarioResult) error {
	n := b.s.sessions
	// The memory measurements keep both ends of 4n connections here; the
	// capacity test keeps the gateway's ends, the client's being in a
	// stream holder process.
	need := uint64(max(8*n, b.s.streams) + 4096)
	limit, err := raiseNoFile(need)
	if err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("RLIMIT_NOFILE: %d (wanted %d); the SSE streams' client ends are held by a child process with its own limit", limit, need))

	direct, err := startSDKServers(ctx, []*mcp.Server{newToolServer("direct", coldToolsPerUpstream)})
	if err != nil {
		return err
	}
	defer direct.close()
	up, err := startSDKServers(ctx, []*mcp.Server{newToolServer("up", coldToolsPerUpstream)})
	if err != nil {
		return err
	}
	defer up.close()
	ups := []gateway.UpstreamConfig{{Name: "up", Transport: gateway.TransportStreamableHTTP, URL: up.url(0)}}
	gw, err := startGateway(ctx, ups, nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, countIs(coldToolsPerUpstream)); err != nil {
		return err
	}
	res.Baseline = "direct: a go-sdk server (StreamableHTTPHandler / SSEHandler) in this process"
	res.Subject = "gateway: the gateway in this process, one shared upstream"
	res.Notes = append(res.Notes,
		fmt.Sprintf("memory per session = growth of HeapInuse + StackInuse after GC over %d sessions, divided by %d; the client end of each raw stream connection is subtracted", n, n),
		"Streamable HTTP sessions: initialize + notifications/initialized (2025-11-25) with plain HTTP; legacy SSE: GET /sse until the endpoint event")

	connCost, err := rawConnCost(n)
	if err != nil {
		return fmt.Errorf("measuring a raw connection: %w", err)
	}
	res.Rows = append(res.Rows, single("client end of a TCP connection (subtracted)", UnitBytes, connCost.total()).
		withNote("measured on plain loopback connection pairs"))

	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: openWorkers, MaxIdleConnsPerHost: openWorkers}}
	defer hc.CloseIdleConnections()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	kinds := []struct {
		metric string
		target int
		open   func(mcpURL, sseURL string) (net.Conn, error)
	}{
		{"idle session, Streamable HTTP, no stream", idleSessionTarget, func(mcpURL, _ string) (net.Conn, error) {
			_, err := rawInitialize(ctx, hc, mcpURL)
			return nil, err
		}},
		{"idle session + standalone GET stream", streamSessionTarget, func(mcpURL, _ string) (net.Conn, error) {
			sid, err := rawInitialize(ctx, hc, mcpURL)
			if err != nil {
				return nil, err
			}
			return openStream(mcpURL, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": rev20251125}, false)
		}},
		{"idle legacy SSE session (GET /sse open)", streamSessionTarget, func(_, sseURL string) (net.Conn, error) {
			return openStream(sseURL, nil, true)
		}},
	}
	sides := []struct{ mcpURL, sseURL string }{
		{direct.url(0), direct.sseURL()},
		{gw.mcpURL(), "http://" + gw.addr + gateway.PathSSE},
	}
	for _, k := range kinds {
		var per [2]memDelta
		for i, side := range sides {
			b.logf("%s: %d sessions, side %d", k.metric, n, i)
			before := snapshot()
			opened, err := openMany(ctx, n, func() (net.Conn, error) { return k.open(side.mcpURL, side.sseURL) })
			conns = append(conns, opened...)
			if err != nil {
				return fmt.Errorf("%s: %w", k.metric, err)
			}
			per[i] = snapshot().since(before, n)
			if len(opened) > 0 {
				per[i] = per[i].minus(connCost)
			}
		}
		res.Rows = append(res.Rows, compare(k.metric, UnitBytes, per[0].total(), per[1].total()).
			judge("<= "+formatBytes(float64(k.target)), per[1].total() <= float64(k.target)).
			withNote("gateway: heap %s + stacks %s, %.1f goroutines; direct: %.1f goroutines",
				formatBytes(per[1].heapInuse), formatBytes(per[1].stackInuse), per[1].goroutines, per[0].goroutines))
	}
	// Capacity, on a gateway of its own. Everything above ends first
	// (each close waits for its sessions), so that no memory is freed
	// while the streams' memory is measured.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	hc.CloseIdleConnections()
	direct.close()
	gw.close()
	gw2, err := startGateway(ctx, ups, nil, b.log)
	if err != nil {
		return err
	}
	defer gw2.close()
	if err := gw2.waitTools(ctx, countIs(coldToolsPerUpstream)); err != nil {
		return err
	}
	b.logf("holding up to %d SSE streams", b.s.streams)
	h, err := holdStreams(ctx, "http://"+gw2.addr+gateway.PathSSE, b.s.streams, b.holdBudget())
	if err != nil {
		return err
	}
	row := single("concurrent legacy SSE streams held", UnitCount, float64(h.held))
	if b.s.streams >= streamsTarget {
		row = row.judge(fmt.Sprintf(">= %d", streamsTarget), h.held >= streamsTarget)
	}
	res.Rows = append(res.Rows,
		row.withNote("tried %d in %.1fs; stopped: %s", b.s.streams, h.elapsed.Seconds(), h.reason),
		single(fmt.Sprintf("memory per stream at %d streams", h.held), UnitBytes, h.per.total()).
			withNote("heap %s + stacks %s, %.1f goroutines", formatBytes(h.per.heapInuse), formatBytes(h.per.stackInuse), h.per.goroutines),
		single(fmt.Sprintf("memory at %d streams", h.held), UnitBytes, h.per.total()*float64(h.held)),
	)
	return nil
}

// openMany opens n sessions with openWorkers at once and returns the
// connections they hold (none for sessions without a stream). It stops at
// the first failure.
func openMany(ctx context.Context, n int, open func() (net.Conn, error)) ([]net.Conn, error) {
	var (
		next  atomic.Int64
		mu    sync.Mutex // guards conns and first
		conns []net.Conn
		first error
		wg    sync.WaitGroup
	)
	for range openWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if ctx.Err() != nil {
					return
				}
				c, err := open()
				mu.Lock()
				if c != nil {
					conns = append(conns, c)
				}
				if err != nil && first == nil {
					first = err
					next.Store(int64(n)) // the others stop
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return conns, first
}

// held is the outcome of holdStreams.
type held struct {
	held    int
	reason  string // why it stopped
	elapsed time.Duration
	per     memDelta // this process's memory per stream
}

// holdStreams has a stream holder (holder.go) open up to want legacy SSE
// streams to url until they are all open, one fails, or budget runs out;
// measures the memory they cost this process; and closes them.
func holdStreams(ctx context.Context, url string, want int, budget time.Duration) (held, error) {
	before := snapshot()
	start := time.Now()
	h, n, reason, err := startHolder(ctx, url, want, budget)
	if err != nil {
		return held{}, err
	}
	defer h.close()
	out := held{held: n, reason: reason, elapsed: time.Since(start)}
	if n > 0 {
		out.per = snapshot().since(before, n)
	}
	return out, nil
}
