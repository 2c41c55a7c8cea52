package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgw/gateway/upstream"
)

// /readyz is 200 while every required upstream is up, whatever the others
// do; 503 while a required one is down; and 503 from the moment shutdown
// begins.
func TestReadiness(t *testing.T) {
	down := UpstreamConfig{Name: "down", Transport: TransportStreamableHTTP, URL: "http://127.0.0.1:1/mcp"}
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo"), down}, func(c *Config, _ *Options) { c.Upstreams[0].Required = true })
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	resp, body := doRequest(t, http.MethodGet, tg.srv.URL+PathReady, "", nil)
	var ready struct {
		Status    string
		Upstreams map[string]struct {
			State    string
			Required bool
		}
	}
	json.Unmarshal(body, &ready)
	if resp.StatusCode != 200 || ready.Upstreams["demo"].State != "up" || !ready.Upstreams["demo"].Required || ready.Upstreams["down"].State == "up" {
		t.Errorf("readyz with the required upstream up and another down = %d %s, want 200 listing both", resp.StatusCode, body)
	}

	tg2 := startGateway(t, []UpstreamConfig{demoUpstream("demo"), down}, func(c *Config, _ *Options) { c.Upstreams[1].Required = true })
	resp, body = doRequest(t, http.MethodGet, tg2.srv.URL+PathReady, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "required upstreams down: down") {
		t.Errorf("readyz with a required upstream down = %d %s, want 503 naming it", resp.StatusCode, body)
	}

	tg.g.BeginShutdown()
	resp, body = doRequest(t, http.MethodGet, tg.srv.URL+PathReady, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("readyz after shutdown began = %d %s, want 503", resp.StatusCode, body)
	}
}

func TestHealthState(t *testing.T) {
	for _, tc := range []struct {
		st   upstream.Status
		want string
	}{
		{upstream.Status{State: upstream.StateUp, Restarts: 7}, "up"},
		{upstream.Status{State: upstream.StateConnecting}, "connecting"},
		{upstream.Status{State: upstream.StateConnecting, Restarts: 1}, "restarting"},
		{upstream.Status{State: upstream.StateDown, Restarts: 1}, "down"},
		{upstream.Status{State: upstream.StateDown, Restarts: 3}, "crash-looping"},
		{upstream.Status{State: upstream.StateConnecting, Restarts: 5}, "crash-looping"},
		{upstream.Status{State: upstream.StateClosed, Restarts: 5}, "closed"},
	} {
		if got := healthState(tc.st); got != tc.want {
			t.Errorf("healthState(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
}
