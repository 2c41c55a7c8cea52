// Scenario 6: the gateway with a Redis session store against the one with
// the in-memory store.
//
// The hook: the scenario runs once the gateway's config accepts
// session_store.type redis (asked of Config.Validate at run time, so that
// nothing here changes when the store is wired), --redis is given and
// redis-server is on PATH. The Redis store reaches the gateway through
// gateway.Options.Store, which works whatever the config's Redis fields
// end up being called.

package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/gateway/gateway"
	"github.com/mcpgw/gateway/sessionstore"
)

// redisAccepted reports whether gateway.Config.Validate accepts
// session_store.type redis; if not, why not, in Validate's words.
func redisAccepted() (bool, string) {
	cfg := &gateway.Config{Upstreams: []gateway.UpstreamConfig{{Name: "probe", Transport: gateway.TransportStreamableHTTP, URL: "http://127.0.0.1:1/mcp"}}}
	cfg.SessionStore.Type = "redis"
	cfg.ApplyDefaults()
	err := cfg.Validate()
	if err == nil {
		return true, ""
	}
	// Other session_store problems (a missing Redis URL, say) mean the
	// type itself is accepted.
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "session_store.type") {
			return false, strings.TrimSpace(line)
		}
	}
	return true, ""
}

// scenarioStore is scenario 6.
func (b *bench) scenarioStore(ctx context.Context, res *ScenarioResult) error {
	if ok, why := redisAccepted(); !ok {
		return &skipError{"not yet wired: gateway.Config.Validate rejects session_store.type redis (" + why + "); this scenario runs, with --redis, once it accepts it"}
	}
	if !b.s.redis {
		return &skipError{"the gateway accepts session_store.type redis: pass --redis to compare the Redis store with the memory store"}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return &skipError{errNoRedis.Error() + " (apt-get install redis-server)"}
	}
	dir, err := os.MkdirTemp("", "gateway-bench-redis-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rd, addr, err := startRedis(bin, dir)
	if err != nil {
		return err
	}
	defer rd.stop()
	client, err := sessionstore.NewRedisClient(&sessionstore.RedisClientConfig{URL: "redis://" + addr})
	if err != nil {
		return err
	}
	defer client.Close()
	rt := &roundTrips{}
	client.AddHook(rt)
	store := sessionstore.NewRedis(client, nil)
	defer store.Close()

	ss, err := startSDKServers(ctx, []*mcp.Server{newToolServer("up", coldToolsPerUpstream)})
	if err != nil {
		return err
	}
	defer ss.close()
	ups := []gateway.UpstreamConfig{{Name: "up", Transport: gateway.TransportStreamableHTTP, URL: ss.url(0)}}
	memGW, err := startGateway(ctx, ups, nil, b.log)
	if err != nil {
		return err
	}
	defer memGW.close()
	redisGW, err := startGateway(ctx, ups, store, b.log)
	if err != nil {
		return err
	}
	defer redisGW.close()
	for _, gw := range []*gatewayServer{memGW, redisGW} {
		if err := gw.waitTools(ctx, countIs(coldToolsPerUpstream)); err != nil {
			return err
		}
	}
	res.Baseline = "gateway with the in-memory session store"
	res.Subject = "gateway with the Redis session store (redis-server on loopback)"
	res.Notes = append(res.Notes, "upstream: a go-sdk server in this process; 2025-11-25 sessionful clients (every request looks up and touches its session)")

	hc := newLoadClient()
	defer hc.CloseIdleConnections()
	op := callTool("up__tool_000", multiplyArgs)
	targets := []*target{
		httpTarget("memory store", memGW.mcpURL(), rev20251125, hc, op),
		httpTarget("redis store", redisGW.mcpURL(), rev20251125, hc, op),
	}
	lat, err := measureLatency(ctx, b.plan, targets)
	if err != nil {
		return err
	}
	thr, err := measureThroughput(ctx, b.plan, targets, judgedLevel)
	if err != nil {
		return err
	}
	cold, err := measureCold(ctx, b.plan, []*coldTarget{
		{name: "memory store", endpoint: memGW.mcpURL(), version: rev20251125, wantTools: coldToolsPerUpstream},
		{name: "redis store", endpoint: redisGW.mcpURL(), version: rev20251125, wantTools: coldToolsPerUpstream},
	})
	if err != nil {
		return err
	}
	perCall, err := roundTripsPerCall(ctx, targets[1], rt, 500)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, latencyRows("1 client", lat[0], lat[1], false)...)
	res.Rows = append(res.Rows, single("Redis round trips per tools/call", UnitCount, perCall).
		judge("<= 1", perCall <= 1).withNote("counted by a go-redis hook on the store's client over 500 calls on one session, one HTTP request each"))
	res.Rows = append(res.Rows, throughputRow("", judgedLevel, thr[0], thr[1]).
		judge(">= 80% of the memory store", thr[1].perSecond >= 0.8*thr[0].perSecond),
		compare("32 clients CPU per call, this process", UnitMicros, micros(thr[0].cpuPerCall), micros(thr[1].cpuPerCall)).
			withNote("client, gateway and the in-process upstream; redis-server's own CPU is not counted"),
		compare("new session: connect+init+list p50", UnitMicros, micros(cold[0].p50), micros(cold[1].p50)).withNote("%d vs %d clients", cold[0].n, cold[1].n),
		compare("new session: connect+init+list p99", UnitMicros, micros(cold[0].p99), micros(cold[1].p99)))
	return nil
}

// roundTrips counts the round trips a go-redis client makes: each command
// or pipeline sent.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// roundTripsPerCall makes n calls on one warm session of t and returns how
// many round trips to Redis the gateway's store client made per call.
func roundTripsPerCall(ctx context.Context, t *target, rt *roundTrips, n int) (float64, error) {
	ops, release, err := t.open(ctx, 1)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := ops[0](ctx); err != nil { // warm: the session's first touch
		return 0, err
	}
	before := rt.n.Load()
	for range n {
		if err := ops[0](ctx); err != nil {
			return 0, err
		}
	}
	return float64(rt.n.Load()-before) / float64(n), nil
}
