// Scenario 8 (optional): a peer bridge from npm beside this gateway, in
// front of the same stdio server.
//
// The peer is supergateway (npm "supergateway"), run with
// --outputTransport streamableHttp --stateful: it spawns one stdio child per
// client session. This gateway runs the same way (sharing: per-session),
// so that both sides do the same upstream work: one demo --stdio child per
// client session, every call through it. The peer's binary comes from
// --peer (e.g. node_modules/.bin/supergateway after
// `npm install supergateway@4.0.0`); without it the scenario is skipped,
// since the benchmark must not reach the network.

package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/mcpgw/gateway/gateway"
)

// scenarioPeer is scenario 8.
func (b *bench) scenarioPeer(ctx context.Context, res *ScenarioResult) error {
	if b.s.peerBin == "" {
		return &skipError{"pass --peer PATH to supergateway's executable (npm install supergateway@4.0.0; PATH is node_modules/.bin/supergateway)"}
	}
	bin, err := b.demoBinary(ctx)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	peer, _, err := startChild("supergateway", b.s.peerBin, []string{
		"--stdio", bin + " --stdio --name demo",
		"--outputTransport", "streamableHttp", "--stateful",
		"--port", strconv.Itoa(port), "--logLevel", "info",
	}, func(line string) (string, bool) { return "", strings.Contains(line, "Listening on port") })
	if err != nil {
		return err
	}
	defer peer.stop()

	gw, err := startGateway(ctx, []gateway.UpstreamConfig{{Name: "demo", Transport: gateway.TransportStdio, Command: bin,
		Args: []string{"--stdio", "--name", "demo"}, Sharing: gateway.SharingPerSession}}, nil, b.log)
	if err != nil {
		return err
	}
	defer gw.close()
	if err := gw.waitTools(ctx, hasTools("demo__multiply")); err != nil {
		return err
	}
	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	targets := []*target{
		httpTarget("supergateway", "http://127.0.0.1:"+strconv.Itoa(port)+"/mcp", rev20251125, hc, callTool("multiply", multiplyArgs)),
		httpTarget("gateway", gw.mcpURL(), rev20251125, hc, callTool("demo__multiply", multiplyArgs)),
	}
	res.Baseline = "peer: go-sdk clients -> supergateway 4.0.0 (Node, --stateful streamableHttp) -> one demo --stdio child per client session"
	res.Subject = "this gateway (sharing: per-session) -> one demo --stdio child per client session"
	res.Notes = append(res.Notes, "the peer runs in its own Node process; CPU per call is not comparable across processes and is not shown")
	lat, err := measureLatency(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, latencyRows("1 client", lat[0], lat[1], false)...)
	for _, c := range []int{8, judgedLevel} {
		thr, err := measureThroughput(ctx, b.plan, targets, c)
		if err != nil {
			return err
		}
		res.Rows = append(res.Rows, throughputRow("", c, thr[0], thr[1]))
	}
	return nil
}
