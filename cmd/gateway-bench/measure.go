// The measuring engine: targets (one side of a comparison: where clients
// connect and what each operation does) and interleaved measurements of
// latency, throughput, allocations and cold connects.
//
// Interleaving: a measurement of duration D per target runs as rounds of
// plan.round. Round r visits the targets in order when r is even and in
// reverse when odd (A B B A A B ...), so neither side always follows the
// other. Before the first round each target gets one unrecorded warm-up
// round.

package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Protocol revisions a client asks for.
const (
	rev20251125 = "2025-11-25" // the newest sessionful revision
	rev20260728 = "2026-07-28" // stateless
)

// clientImpl names the bench's clients.
var clientImpl = &mcp.Implementation{Name: "gateway-bench", Version: "1"}

// plan is how long measurements run.
type plan struct {
	perTarget time.Duration // recorded time per target per measurement
	round     time.Duration // one interleaved round
	warmup    time.Duration // unrecorded, once per target per measurement
	allocRuns int           // sequential calls per round when counting allocations
}

func newPlan(s settings) plan {
	p := plan{perTarget: s.duration, round: min(s.duration, time.Second), allocRuns: 500}
	if s.quick {
		p.round = min(s.duration, 150*time.Millisecond)
		p.allocRuns = 50
	}
	p.warmup = min(p.round, 500*time.Millisecond)
	return p
}

// rounds is the number of rounds that make up perTarget.
func (p plan) rounds() int {
	return max(1, int(math.Round(float64(p.perTarget)/float64(p.round))))
}

// target is one side of a comparison.
type target struct {
	name string
	// open connects n simulated clients and returns, for each, the
	// operation it repeats (a tools/call, say), and a function that
	// disconnects them all.
	open func(ctx context.Context, n int) ([]op, func(), error)
}

// op is one operation of one client.
type op func(ctx context.Context) error

// sessionOps binds do to each session.
func sessionOps(sessions []*mcp.ClientSession, do func(context.Context, *mcp.ClientSession) error) []op {
	ops := make([]op, len(sessions))
	for i, cs := range sessions {
		ops[i] = func(ctx context.Context) error { return do(ctx, cs) }
	}
	return ops
}

// newLoadClient returns an HTTP client for load: connections are kept and
// reused however many are in flight, and no proxy is consulted.
func newLoadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     2 * time.Minute,
	}}
}

// httpTarget connects clients over Streamable HTTP to endpoint, asking for
// revision version, without the optional standalone GET stream (calls do
// not need it, and both sides are treated alike).
func httpTarget(name, endpoint, version string, hc *http.Client, do func(context.Context, *mcp.ClientSession) error) *target {
	return &target{name: name, open: func(ctx context.Context, n int) ([]op, func(), error) {
		var sessions []*mcp.ClientSession
		release := func() {
			for _, cs := range sessions {
				cs.Close()
			}
		}
		for range n {
			cs, err := connectHTTP(ctx, endpoint, version, hc)
			if err != nil {
				release()
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			sessions = append(sessions, cs)
		}
		return sessionOps(sessions, do), release, nil
	}}
}

// connectHTTP opens one client session over Streamable HTTP. ctx bounds
// the handshake only.
func connectHTTP(ctx context.Context, endpoint, version string, hc *http.Client) (*mcp.ClientSession, error) {
	c := mcp.NewClient(clientImpl, nil)
	t := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	return cs, nil
}

// callTool returns an op that calls tool with args and checks the result.
// args is only read; the params are new for each call, since the SDK
// writes into them (2026-07-28 clients get their _meta set).
func callTool(tool string, args map[string]any) func(context.Context, *mcp.ClientSession) error {
	return func(ctx context.Context, cs *mcp.ClientSession) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			return err
		}
		if res.IsError {
			return fmt.Errorf("%s returned a tool error", tool)
		}
		return nil
	}
}

// listTools returns an op that lists every tool, following pages, and
// checks that there are want.
func listTools(want int) func(context.Context, *mcp.ClientSession) error {
	return func(ctx context.Context, cs *mcp.ClientSession) error {
		n := 0
		for _, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return err
			}
			n++
		}
		if n != want {
			return fmt.Errorf("tools/list returned %d tools, want %d", n, want)
		}
		return nil
	}
}

// multiplyArgs is the small payload of the call scenarios.
var multiplyArgs = map[string]any{"a": 6, "b": 7}

// opTimeout bounds each operation, so that a stuck server fails the run
// instead of hanging it.
const opTimeout = 30 * time.Second

// errorBudget is the share of failed operations a measurement tolerates
// (a timeout under overload, say) before it fails; failures are reported.
const errorBudget = 0.01

// opErrors counts failed operations and keeps the first failure.
type opErrors struct {
	n     atomic.Int64
	mu    sync.Mutex // guards first
	first error
}

func (e *opErrors) add(err error) {
	e.n.Add(1)
	e.mu.Lock()
	if e.first == nil {
		e.first = err
	}
	e.mu.Unlock()
}

// check fails when more than errorBudget of total operations failed.
func (e *opErrors) check(name string, total int64) error {
	n := e.n.Load()
	if n > 0 && (total == 0 || float64(n) > errorBudget*float64(total+n)) {
		return fmt.Errorf("%s: %d of %d operations failed; first: %w", name, n, total+n, e.first)
	}
	return nil
}

// interleave calls fn(i) for every target index i, rounds times,
// alternating the order each round.
func interleave(ctx context.Context, rounds, n int, fn func(i int) error) error {
	for r := range rounds {
		for k := range n {
			i := k
			if r%2 == 1 {
				i = n - 1 - k
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// latencyStats summarizes one target's latencies.
type latencyStats struct {
	n             int
	p50, p90, p99 time.Duration
	errors        int64
}

// measureLatency runs one client per target issuing operations one after
// another, and returns each target's latency percentiles.
func measureLatency(ctx context.Context, p plan, targets []*target) ([]latencyStats, error) {
	clients := make([]op, len(targets))
	for i, t := range targets {
		ops, release, err := t.open(ctx, 1)
		if err != nil {
			return nil, err
		}
		defer release()
		clients[i] = ops[0]
	}
	samples := make([][]time.Duration, len(targets))
	errs := make([]opErrors, len(targets))
	runFor := func(i int, d time.Duration, record bool) error {
		rctx, cancel := context.WithTimeout(ctx, d+opTimeout)
		defer cancel()
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			start := time.Now()
			err := clients[i](rctx)
			elapsed := time.Since(start)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case err != nil:
				// A rare failure is counted and reported; a target
				// that keeps failing ends the measurement.
				errs[i].add(err)
				if errs[i].n.Load() > 10 {
					if err := errs[i].check(targets[i].name, int64(len(samples[i]))); err != nil {
						return err
					}
				}
			case record:
				samples[i] = append(samples[i], elapsed)
			}
		}
		return nil
	}
	for i := range targets {
		if err := runFor(i, p.warmup, false); err != nil {
			return nil, err
		}
	}
	if err := interleave(ctx, p.rounds(), len(targets), func(i int) error { return runFor(i, p.round, true) }); err != nil {
		return nil, err
	}
	out := make([]latencyStats, len(targets))
	for i := range targets {
		if err := errs[i].check(targets[i].name, int64(len(samples[i]))); err != nil {
			return nil, err
		}
		out[i] = summarize(samples[i])
		out[i].errors = errs[i].n.Load()
	}
	return out, nil
}

// summarize sorts ds and returns its percentiles (nearest rank).
func summarize(ds []time.Duration) latencyStats {
	slices.Sort(ds)
	return latencyStats{n: len(ds), p50: percentile(ds, 50), p90: percentile(ds, 90), p99: percentile(ds, 99)}
}

// percentile returns the nearest-rank percentile of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// throughputStats is one target's completed operations per second.
type throughputStats struct {
	perSecond float64
	calls     int64
	errors    int64
	// cpuPerCall is this process's CPU time (user + system) per completed
	// operation: the client's, plus the gateway's on a gateway side.
	cpuPerCall time.Duration
}

// measureThroughput runs c clients per target, each issuing operations
// back to back, and returns each target's rate. Only operations that end
// within a round count, over the rounds' total length.
func measureThroughput(ctx context.Context, p plan, targets []*target, c int) ([]throughputStats, error) {
	clients := make([][]op, len(targets))
	for i, t := range targets {
		ops, release, err := t.open(ctx, c)
		if err != nil {
			return nil, err
		}
		defer release()
		clients[i] = ops
	}
	done := make([]int64, len(targets))
	elapsed := make([]time.Duration, len(targets))
	cpu := make([]time.Duration, len(targets))
	errs := make([]opErrors, len(targets))
	runFor := func(i int, d time.Duration, record bool) error {
		rctx, cancel := context.WithTimeout(ctx, d+opTimeout)
		defer cancel()
		var n atomic.Int64
		cpuStart := processCPU()
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for _, client := range clients[i] {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					err := client(rctx)
					if rctx.Err() != nil {
						return
					}
					if err != nil {
						errs[i].add(err)
						continue
					}
					if !time.Now().After(deadline) {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		cpuUsed := processCPU() - cpuStart
		if err := ctx.Err(); err != nil {
			return err
		}
		if record {
			done[i] += n.Load()
			elapsed[i] += d
			cpu[i] += cpuUsed
		}
		return nil
	}
	for i := range targets {
		if err := runFor(i, p.warmup, false); err != nil {
			return nil, err
		}
	}
	if err := interleave(ctx, p.rounds(), len(targets), func(i int) error { return runFor(i, p.round, true) }); err != nil {
		return nil, err
	}
	out := make([]throughputStats, len(targets))
	for i := range targets {
		if err := errs[i].check(targets[i].name, done[i]); err != nil {
			return nil, err
		}
		out[i] = throughputStats{perSecond: float64(done[i]) / elapsed[i].Seconds(), calls: done[i], errors: errs[i].n.Load()}
		if done[i] > 0 {
			out[i].cpuPerCall = cpu[i] / time.Duration(done[i])
		}
	}
	return out, nil
}

// allocStats is what one operation allocates in this process.
type allocStats struct {
	bytes, allocs float64 // per operation
}

// measureAllocs counts the heap allocations of this process over
// sequential operations on one session per target (runtime.MemStats
// TotalAlloc and Mallocs deltas). With the upstream in another process,
// the direct side counts the client alone and the gateway side the client
// plus the gateway, so the difference is the gateway's cost per call.
func measureAllocs(ctx context.Context, p plan, targets []*target) ([]allocStats, error) {
	clients := make([]op, len(targets))
	for i, t := range targets {
		ops, release, err := t.open(ctx, 1)
		if err != nil {
			return nil, err
		}
		defer release()
		clients[i] = ops[0]
	}
	var bytes, mallocs, ops = make([]uint64, len(targets)), make([]uint64, len(targets)), make([]uint64, len(targets))
	runN := func(i, n int, record bool) error {
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			if err := clients[i](rctx); err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
		}
		runtime.ReadMemStats(&after)
		if record {
			bytes[i] += after.TotalAlloc - before.TotalAlloc
			mallocs[i] += after.Mallocs - before.Mallocs
			ops[i] += uint64(n)
		}
		return nil
	}
	for i := range targets {
		if err := runN(i, max(10, p.allocRuns/5), false); err != nil {
			return nil, err
		}
	}
	rounds := max(2, min(p.rounds(), 6))
	if err := interleave(ctx, rounds, len(targets), func(i int) error { return runN(i, p.allocRuns, true) }); err != nil {
		return nil, err
	}
	out := make([]allocStats, len(targets))
	for i := range targets {
		out[i] = allocStats{bytes: float64(bytes[i]) / float64(ops[i]), allocs: float64(mallocs[i]) / float64(ops[i])}
	}
	return out, nil
}

// coldTarget is one side of a cold-connect comparison.
type coldTarget struct {
	name      string
	endpoint  string
	version   string
	wantTools int
	plain     bool // plain HTTP requests (2025-11-25) instead of a go-sdk client
}

// coldConnect is one new client: a new HTTP transport (so a new TCP
// connection), connect, initialize and list every tool. It returns how
// long that took; closing the session is not timed.
func coldConnect(ctx context.Context, t *coldTarget) (time.Duration, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	start := time.Now()
	if t.plain {
		sid, err := rawInitialize(ctx, hc, t.endpoint)
		if err != nil {
			return 0, err
		}
		defer rawDelete(ctx, hc, t.endpoint, sid)
		if err := rawListAll(ctx, hc, t.endpoint, sid, t.wantTools); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	cs, err := connectHTTP(ctx, t.endpoint, t.version, hc)
	if err != nil {
		return 0, err
	}
	defer cs.Close()
	if err := listTools(t.wantTools)(ctx, cs); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// measureCold repeats cold connects per target, interleaved, and returns
// each target's latency percentiles.
func measureCold(ctx context.Context, p plan, targets []*coldTarget) ([]latencyStats, error) {
	samples := make([][]time.Duration, len(targets))
	runFor := func(i int, d time.Duration, record bool) error {
		deadline := time.Now().Add(d)
		for first := true; first || time.Now().Before(deadline); first = false {
			elapsed, err := coldConnect(ctx, targets[i])
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
			if record {
				samples[i] = append(samples[i], elapsed)
			}
		}
		return nil
	}
	for i := range targets {
		if err := runFor(i, p.warmup, false); err != nil {
			return nil, err
		}
	}
	if err := interleave(ctx, p.rounds(), len(targets), func(i int) error { return runFor(i, p.round, true) }); err != nil {
		return nil, err
	}
	out := make([]latencyStats, len(targets))
	for i := range targets {
		out[i] = summarize(samples[i])
	}
	return out, nil
}
