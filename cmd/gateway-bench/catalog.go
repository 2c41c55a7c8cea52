// Scenarios 3 and 4: catalogs. The upstreams are go-sdk servers in this
// process (fifty demo processes would measure the machine, not the
// gateway), each with small multiply-shaped tools.

package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/gateway"
)

// Scenario 3.
var coldUpstreamCounts = []int{1, 10, 50}

const (
	coldToolsPerUpstream = 8 // as many as the demo server has
	coldJudgedUpstreams  = 10
	coldP50Target        = 5 * time.Millisecond
)

// Scenario 4.
const (
	largeUpstreams        = 50
	largeToolsPerUpstream = 100
	largeListP50Target    = 20 * time.Millisecond
)

// gatewayUpstreams mounts the first n servers of ss.
func gatewayUpstreams(ss *sdkServers, n int) []gateway.UpstreamConfig {
	ups := make([]gateway.UpstreamConfig, n)
	for i := range ups {
		ups[i] = gateway.UpstreamConfig{Name: fmt.Sprintf("up%d", i), Transport: gateway.TransportStreamableHTTP, URL: ss.url(i)}
	}
	return ups
}

// scenarioColdStart is scenario 3: a new client's connect, initialize and
// tools/list, with the gateway's catalog already warm. The direct side for
// N upstreams is one server holding as many tools (8 N), since a client's
// own work grows with the tools it lists.
func (b *bench) scenarioColdStart(ctx context.Context, res *ScenarioResult) error {
	most := coldUpstreamCounts[len(coldUpstreamCounts)-1]
	servers := make([]*mcp.Server, most, most+len(coldUpstreamCounts))
	for i := range servers {
		servers[i] = newToolServer(fmt.Sprintf("up%d", i), coldToolsPerUpstream)
	}
	direct := map[int]int{} // upstream count -> index of the server with as many tools
	for _, n := range coldUpstreamCounts {
		direct[n] = len(servers)
		servers = append(servers, newToolServer(fmt.Sprintf("direct%d", n), n*coldToolsPerUpstream))
	}
	ss, err := startSDKServers(ctx, servers)
	if err != nil {
		return err
	}
	defer ss.close()
	res.Baseline = fmt.Sprintf("direct: a new go-sdk client -> one go-sdk server with as many tools (%d N)", coldToolsPerUpstream)
	res.Subject = fmt.Sprintf("gateway: a new go-sdk client -> gateway mounting N go-sdk upstreams of %d tools", coldToolsPerUpstream)
	res.Notes = append(res.Notes,
		"each sample: new HTTP transport (new TCP connection), initialize (2025-11-25) + notifications/initialized, tools/list following every page; closing is not timed",
		"go-sdk client rows include the client's decoding and checking of every listed tool; plain HTTP rows send the same requests and only find the cursor and count the tools")
	for _, n := range coldUpstreamCounts {
		if err := b.coldStartWith(ctx, res, ss, n, direct[n]); err != nil {
			return err
		}
	}
	return nil
}

// coldStartWith measures cold clients of a gateway over n upstreams
// against server direct of ss.
func (b *bench) coldStartWith(ctx context.Context, res *ScenarioResult, ss *sdkServers, n, direct int) error {
	b.logf("cold clients, %d upstreams", n)
	gw, err := startGateway(ctx, gatewayUpstreams(ss, n), nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	tools := n * coldToolsPerUpstream
	if err := gw.waitTools(ctx, countIs(tools)); err != nil {
		return err
	}
	stats, err := measureCold(ctx, b.plan, []*coldTarget{
		{name: "direct", endpoint: ss.url(direct), version: rev20251125, wantTools: tools},
		{name: "gateway", endpoint: gw.mcpURL(), version: rev20251125, wantTools: tools},
		{name: "direct, plain HTTP", endpoint: ss.url(direct), wantTools: tools, plain: true},
		{name: "gateway, plain HTTP", endpoint: gw.mcpURL(), wantTools: tools, plain: true},
	})
	if err != nil {
		return err
	}
	upstreams := fmt.Sprintf("%d upstreams", n)
	if n == 1 {
		upstreams = "1 upstream"
	}
	for _, side := range []struct {
		client     string
		base, subj latencyStats
	}{{"go-sdk client", stats[0], stats[1]}, {"plain HTTP", stats[2], stats[3]}} {
		label := fmt.Sprintf("%s (%d tools), %s", upstreams, tools, side.client)
		base, subj := side.base, side.subj
		p50 := compare(label+" p50", UnitMicros, micros(base.p50), micros(subj.p50)).withNote("%d vs %d clients", base.n, subj.n)
		if n == coldJudgedUpstreams {
			p50 = p50.judge("<= 5ms", subj.p50 <= coldP50Target)
		}
		res.Rows = append(res.Rows, p50,
			compare(label+" p90", UnitMicros, micros(base.p90), micros(subj.p90)),
			compare(label+" p99", UnitMicros, micros(base.p99), micros(subj.p99)))
	}
	return nil
}

// scenarioLargeCatalog is scenario 4: tools/list of 5000 tools, and what
// holding them costs the gateway.
func (b *bench) scenarioLargeCatalog(ctx context.Context, res *ScenarioResult) error {
	total := largeUpstreams * largeToolsPerUpstream

	// The baseline: one go-sdk server holding every tool, and its memory.
	before := snapshot()
	big := newToolServer("big", total)
	bigServer, err := startSDKServers(ctx, []*mcp.Server{big})
	if err != nil {
		return err
	}
	defer bigServer.close()
	bigMem := snapshot().since(before, 1)

	servers := make([]*mcp.Server, largeUpstreams)
	for i := range servers {
		servers[i] = newToolServer(fmt.Sprintf("up%d", i), largeToolsPerUpstream)
	}
	ss, err := startSDKServers(ctx, servers)
	if err != nil {
		return err
	}
	defer ss.close()

	b.logf("starting a gateway over %d upstreams x %d tools", largeUpstreams, largeToolsPerUpstream)
	before = snapshot()
	gw, err := startGateway(ctx, gatewayUpstreams(ss, largeUpstreams), nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, countIs(total)); err != nil {
		return err
	}
	gwMem := snapshot().since(before, 1)
	runtime.KeepAlive(big)

	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	b.logf("tools/list of %d tools", total)
	lat, err := measureLatency(ctx, b.plan, []*target{
		httpTarget("direct", bigServer.url(0), rev20251125, hc, listTools(total)),
		httpTarget("gateway", gw.mcpURL(), rev20251125, hc, listTools(total)),
		rawListTarget("direct, plain HTTP", bigServer.url(0), hc, total),
		rawListTarget("gateway, plain HTTP", gw.mcpURL(), hc, total),
	})
	if err != nil {
		return err
	}
	res.Baseline = fmt.Sprintf("direct: one go-sdk server holding all %d tools (same definitions, same page size 1000)", total)
	res.Subject = fmt.Sprintf("gateway: %d go-sdk upstreams x %d tools, merged", largeUpstreams, largeToolsPerUpstream)
	res.Notes = append(res.Notes,
		"tools/list on a warm session, every page (5 requests of 1000), by a go-sdk client (ClientSession.Tools) and by plain HTTP requests that only find the cursor and count the tools; the go-sdk client decodes and checks every tool, which the plain rows leave out",
		"memory: HeapInuse growth (after GC) from building the server / from starting the gateway until its catalog is warm; the gateway's includes the 50 upstream-side sessions of its connections")
	const sdkDirect, sdkGateway, rawDirect, rawGateway = 0, 1, 2, 3
	for _, side := range []struct {
		label      string
		base, subj int
	}{{"go-sdk client", sdkDirect, sdkGateway}, {"plain HTTP", rawDirect, rawGateway}} {
		base, subj := lat[side.base], lat[side.subj]
		metric := fmt.Sprintf("tools/list %d tools, %s", total, side.label)
		res.Rows = append(res.Rows,
			compare(metric+" p50", UnitMicros, micros(base.p50), micros(subj.p50)).
				judge("<= 20ms", subj.p50 <= largeListP50Target).withNote("%d vs %d lists", base.n, subj.n),
			compare(metric+" p90", UnitMicros, micros(base.p90), micros(subj.p90)),
			compare(metric+" p99", UnitMicros, micros(base.p99), micros(subj.p99)))
	}
	res.Rows = append(res.Rows,
		compare("catalog memory (HeapInuse)", UnitBytes, bigMem.heapInuse, gwMem.heapInuse),
		compare("catalog memory per tool", UnitBytes, bigMem.heapInuse/float64(total), gwMem.heapInuse/float64(total)),
		compare("goroutines", UnitGoroutines, bigMem.goroutines, gwMem.goroutines),
	)
	return nil
}
