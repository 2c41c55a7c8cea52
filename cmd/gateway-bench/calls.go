// Scenarios 1, 2 and 7: tools/call of the demo server's multiply tool
// (a small payload), directly and through the gateway.

package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/mcpgw/gateway/gateway"
)

// Targets of the call scenarios.
const (
	addedP50Target = 200 * time.Microsecond
	addedP99Target = time.Millisecond
	minShareC32    = 0.5  // of direct throughput at 32 clients
	minRateC32     = 3000 // calls/s at 32 clients
)

// throughputLevels are the client counts of the throughput measurements.
var throughputLevels = []int{8, judgedLevel, 128}

// judgedLevel is the client count the throughput target is about, and
// the one --cpuprofile covers in scenario 1.
const judgedLevel = 32

// scenarioHTTPCalls is scenario 1: the demo server over Streamable HTTP.
func (b *bench) scenarioHTTPCalls(ctx context.Context, res *ScenarioResult) error {
	bin, err := b.demoBinary(ctx)
	if err != nil {
		return err
	}
	demo, url, err := startDemoHTTP(bin, "demo", false)
	if err != nil {
		return err
	}
	defer demo.stop()
	gw, err := startGateway(ctx, []gateway.UpstreamConfig{{Name: "demo", Transport: gateway.TransportStreamableHTTP, URL: url}}, nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, hasTools("demo__multiply")); err != nil {
		return err
	}
	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	direct := httpTarget("direct", url, rev20251125, hc, callTool("multiply", multiplyArgs))
	via := httpTarget("gateway", gw.mcpURL(), rev20251125, hc, callTool("demo__multiply", multiplyArgs))
	res.Baseline = "direct: go-sdk client -> demo --http (Streamable HTTP, 2025-11-25 session per client)"
	res.Subject = "gateway: go-sdk client -> gateway (in this process) -> demo --http"
	res.Notes = append(res.Notes, "N clients = N client sessions, each with calls back to back; allocations are this process's (client, plus the gateway on the subject side; the demo runs in its own process)")
	profile := ""
	if b.s.cpuProfile != "" {
		profile = b.s.cpuProfile
		res.Notes = append(res.Notes, fmt.Sprintf("CPU profile of the %d-client throughput rounds (both sides; gateway samples labelled role=gateway) in %s", judgedLevel, profile))
	}
	return b.callRows(ctx, res, direct, via, profile)
}

// scenarioStdioCalls is scenario 2: the demo server over stdio.
func (b *bench) scenarioStdioCalls(ctx context.Context, res *ScenarioResult) error {
	bin, err := b.demoBinary(ctx)
	if err != nil {
		return err
	}
	gw, err := startGateway(ctx, []gateway.UpstreamConfig{{Name: "demo", Transport: gateway.TransportStdio, Command: bin, Args: []string{"--stdio", "--name", "demo"}}}, nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, hasTools("demo__multiply")); err != nil {
		return err
	}
	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	direct := stdioTarget("direct", bin, callTool("multiply", multiplyArgs))
	via := httpTarget("gateway", gw.mcpURL(), rev20251125, hc, callTool("demo__multiply", multiplyArgs))
	res.Baseline = "direct: go-sdk client spawning demo --stdio; N clients share its one session (a stdio server has one client)"
	res.Subject = "gateway: N go-sdk client sessions over Streamable HTTP -> gateway (in this process) -> its one demo --stdio child"
	res.Notes = append(res.Notes, "the upstream does the same work on both sides: one stdio child, N calls in flight")
	return b.callRows(ctx, res, direct, via, "")
}

// callRows measures latency at one client, throughput at each level and
// allocations per call, and adds the rows with their targets. If profile
// is set, the throughput rounds at profiledLevel are CPU-profiled into it.
func (b *bench) callRows(ctx context.Context, res *ScenarioResult, direct, via *target, profile string) error {
	targets := []*target{direct, via}
	b.logf("latency, 1 client")
	lat, err := measureLatency(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, latencyRows("1 client", lat[0], lat[1], true)...)

	for _, c := range throughputLevels {
		b.logf("throughput, %d clients", c)
		var stopProfile func() error
		if profile != "" && c == judgedLevel {
			if stopProfile, err = startCPUProfile(profile); err != nil {
				return err
			}
		}
		thr, err := measureThroughput(ctx, b.plan, targets, c)
		if stopProfile != nil {
			if perr := stopProfile(); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			return err
		}
		row := throughputRow("", c, thr[0], thr[1])
		if c == judgedLevel {
			row = row.judge(fmt.Sprintf(">= %.0f%% of direct and >= %d/s", minShareC32*100, minRateC32),
				thr[1].perSecond >= minShareC32*thr[0].perSecond && thr[1].perSecond >= minRateC32)
		}
		res.Rows = append(res.Rows, row, cpuRow(c, thr[0], thr[1]))
	}

	b.logf("allocations per call")
	allocs, err := measureAllocs(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, allocRows(allocs[0], allocs[1])...)
	return nil
}

// latencyRows compares two latency distributions; judged adds the
// added-latency targets.
func latencyRows(label string, base, subj latencyStats, judged bool) []Row {
	p50 := compare(label+" latency p50", UnitMicros, micros(base.p50), micros(subj.p50))
	p90 := compare(label+" latency p90", UnitMicros, micros(base.p90), micros(subj.p90))
	p99 := compare(label+" latency p99", UnitMicros, micros(base.p99), micros(subj.p99))
	if judged {
		p50 = p50.judge("added <= 200µs", subj.p50-base.p50 <= addedP50Target)
		p99 = p99.judge("added <= 1ms", subj.p99-base.p99 <= addedP99Target)
	}
	p50 = p50.withNote("%d vs %d calls%s", base.n, subj.n, errNote(base.errors+subj.errors))
	return []Row{p50, p90, p99}
}

func throughputRow(label string, c int, base, subj throughputStats) Row {
	return compare(fmt.Sprintf("%s%d clients throughput", label, c), UnitPerSecond, base.perSecond, subj.perSecond).
		withNote("%d vs %d calls%s", base.calls, subj.calls, errNote(base.errors+subj.errors))
}

// cpuRow compares this process's CPU time per call: the client's, and on
// the gateway side the client's plus the gateway's.
func cpuRow(c int, base, subj throughputStats) Row {
	return compare(fmt.Sprintf("%d clients CPU per call, this process", c), UnitMicros, micros(base.cpuPerCall), micros(subj.cpuPerCall)).
		withNote("added = the gateway's CPU per call")
}

func allocRows(base, subj allocStats) []Row {
	return []Row{
		compare("allocated bytes per call", UnitBytes, base.bytes, subj.bytes).withNote("added = the gateway's share"),
		compare("allocations per call", UnitAllocs, base.allocs, subj.allocs).withNote("added = the gateway's share"),
	}
}

func errNote(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed calls not counted", n)
}

// startCPUProfile starts profiling the process into path and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeAllocProfile writes the allocation profile of the whole run so far.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating the allocation profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the allocation profile: %w", err)
	}
	return f.Close()
}

// scenarioRevisions is scenario 7: 2026-07-28 clients (stateless: every
// call a self-contained POST) against 2025-11-25 clients (sessionful),
// through the gateway and directly. The gateway mounts the demo twice:
// sessionful (demo) for the 2025 clients and stateless (demos) for the
// 2026 ones, so each gateway side has its direct counterpart.
func (b *bench) scenarioRevisions(ctx context.Context, res *ScenarioResult) error {
	bin, err := b.demoBinary(ctx)
	if err != nil {
		return err
	}
	sessionful, urlSessionful, err := startDemoHTTP(bin, "demo", false)
	if err != nil {
		return err
	}
	defer sessionful.stop()
	stateless, urlStateless, err := startDemoHTTP(bin, "demos", true)
	if err != nil {
		return err
	}
	defer stateless.stop()
	gw, err := startGateway(ctx, []gateway.UpstreamConfig{
		{Name: "demo", Transport: gateway.TransportStreamableHTTP, URL: urlSessionful},
		{Name: "demos", Transport: gateway.TransportStreamableHTTP, URL: urlStateless},
	}, nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, hasTools("demo__multiply", "demos__multiply")); err != nil {
		return err
	}
	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	d25 := httpTarget("direct 2025-11-25", urlSessionful, rev20251125, hc, callTool("multiply", multiplyArgs))
	g25 := httpTarget("gateway 2025-11-25", gw.mcpURL(), rev20251125, hc, callTool("demo__multiply", multiplyArgs))
	d26 := httpTarget("direct 2026-07-28", urlStateless, rev20260728, hc, callTool("multiply", multiplyArgs))
	g26 := httpTarget("gateway 2026-07-28", gw.mcpURL(), rev20260728, hc, callTool("demos__multiply", multiplyArgs))
	targets := []*target{d25, g25, d26, g26}
	res.Baseline = "2025-11-25 sessionful client -> gateway -> demo --http (sessionful)"
	res.Subject = "2026-07-28 stateless client -> gateway -> demo --http --stateless"
	res.Notes = append(res.Notes,
		"all four sides (direct and gateway, each revision) alternate in every round",
		"rows marked 'direct' compare the revisions without the gateway; 'gateway cost' rows compare each revision's gateway side with its direct side")

	b.logf("latency, 1 client, 4 sides")
	lat, err := measureLatency(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	b.logf("throughput, 32 clients, 4 sides")
	thr, err := measureThroughput(ctx, b.plan, targets, judgedLevel)
	if err != nil {
		return err
	}
	b.logf("allocations, 4 sides")
	allocs, err := measureAllocs(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	const D25, G25, D26, G26 = 0, 1, 2, 3
	res.Rows = append(res.Rows, latencyRows("gateway: 1 client", lat[G25], lat[G26], false)...)
	res.Rows = append(res.Rows, throughputRow("gateway: ", judgedLevel, thr[G25], thr[G26]),
		compare("gateway: 32 clients, gateway CPU per call", UnitMicros, micros(thr[G25].cpuPerCall-thr[D25].cpuPerCall), micros(thr[G26].cpuPerCall-thr[D26].cpuPerCall)).
			withNote("this process's CPU per call, gateway side - direct side"))
	res.Rows = append(res.Rows,
		compare("gateway: allocated bytes per call", UnitBytes, allocs[G25].bytes-allocs[D25].bytes, allocs[G26].bytes-allocs[D26].bytes).withNote("the gateway's share (gateway side - direct side)"),
		compare("gateway: allocations per call", UnitAllocs, allocs[G25].allocs-allocs[D25].allocs, allocs[G26].allocs-allocs[D26].allocs).withNote("the gateway's share"),
	)
	res.Rows = append(res.Rows, latencyRows("direct: 1 client", lat[D25], lat[D26], false)...)
	res.Rows = append(res.Rows, throughputRow("direct: ", judgedLevel, thr[D25], thr[D26]))
	for _, rev := range []struct {
		name string
		d, g int
	}{{"2025-11-25", D25, G25}, {"2026-07-28", D26, G26}} {
		res.Rows = append(res.Rows,
			compare("gateway cost "+rev.name+": latency p50", UnitMicros, micros(lat[rev.d].p50), micros(lat[rev.g].p50)).
				judge("added <= 200µs", lat[rev.g].p50-lat[rev.d].p50 <= addedP50Target).withNote("direct -> gateway"),
			compare("gateway cost "+rev.name+": latency p99", UnitMicros, micros(lat[rev.d].p99), micros(lat[rev.g].p99)).
				judge("added <= 1ms", lat[rev.g].p99-lat[rev.d].p99 <= addedP99Target).withNote("direct -> gateway"),
			compare("gateway cost "+rev.name+": 32 clients throughput", UnitPerSecond, thr[rev.d].perSecond, thr[rev.g].perSecond).
				judge(fmt.Sprintf(">= %.0f%% of direct and >= %d/s", minShareC32*100, minRateC32),
					thr[rev.g].perSecond >= minShareC32*thr[rev.d].perSecond && thr[rev.g].perSecond >= minRateC32).withNote("direct -> gateway"),
		)
	}
	return nil
}
