package gateway

import (
	"strings"
	"testing"
)

// A reload adds and removes upstreams while a client session goes on:
// unchanged upstreams keep their connection and child process, the client
// is told that the list changed, and a changed upstream restarts.
func TestReloadAddsAndRemovesUpstreams(t *testing.T) {
	bURL := startSDKServer(t, echoServer("b", "echo"), false)
	cURL := startSDKServer(t, echoServer("c", "echo"), false)
	tg := startGateway(t, []UpstreamConfig{demoUpstream("a"), {Name: "b", Transport: TransportStreamableHTTP, URL: bURL}})
	client := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	client.waitTools(t, "a and b up", hasAll("a__multiply", "b__echo"))
	pid := tg.g.UpstreamStatus()["a"].PID

	reload := func(ups ...UpstreamConfig) ReloadResult {
		t.Helper()
		cfg := *tg.g.cfg
		cfg.Upstreams = ups
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		res, err := tg.g.Reload(&cfg)
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		return res
	}
	res := reload(demoUpstream("a"), UpstreamConfig{Name: "c", Transport: TransportStreamableHTTP, URL: cURL})
	if strings.Join(res.Added, ",") != "c" || strings.Join(res.Removed, ",") != "b" || strings.Join(res.Kept, ",") != "a" || len(res.Restarted) != 0 {
		t.Errorf("reload = %+v, want c added, b removed, a kept", res)
	}
	client.waitTools(t, "c in, b out", func(names []string) bool { return hasAll("c__echo", "a__multiply")(names) && hasNone("b__echo")(names) })
	if got := callText(t, client.ClientSession, "c__echo", map[string]any{"text": "hi"}); got != "c:hi" {
		t.Errorf("c__echo = %q", got)
	}
	if got := callText(t, client.ClientSession, "a__multiply", map[string]any{"a": 6, "b": 7}); got != "42" {
		t.Errorf("a__multiply after reload = %q", got)
	}
	if now := tg.g.UpstreamStatus()["a"].PID; now != pid {
		t.Errorf("unchanged upstream a was restarted: pid %d -> %d", pid, now)
	}

	changed := demoUpstream("a")
	changed.Args = append(changed.Args, "--stateless=false")
	res = reload(changed, UpstreamConfig{Name: "c", Transport: TransportStreamableHTTP, URL: cURL})
	if strings.Join(res.Restarted, ",") != "a" || strings.Join(res.Kept, ",") != "c" {
		t.Errorf("reload = %+v, want a restarted, c kept", res)
	}
	client.waitTools(t, "a back", hasAll("a__multiply", "c__echo"))
	if got := callText(t, client.ClientSession, "a__multiply", map[string]any{"a": 2, "b": 3}); got != "6" {
		t.Errorf("a__multiply after restart = %q", got)
	}
	if now := tg.g.UpstreamStatus()["a"].PID; now == pid || now == 0 {
		t.Errorf("changed upstream a kept pid %d (now %d), want a new child", pid, now)
	}

	cfg := *tg.g.cfg
	cfg.Namespace.Separator = "."
	if _, err := tg.g.Reload(&cfg); err == nil {
		t.Error("a namespace change was applied live")
	}
}
