package gateway

// Hot reload: a new config's upstreams replace the running ones without a
// restart. Upstreams whose settings are unchanged keep their connections
// and child processes; added ones start; removed ones stop (their entries
// leave the catalog and clients get list_changed); changed ones restart.
// Client sessions go on throughout. Settings that shape the listener, the
// sessions or authentication need a restart; Reload names those that
// differ and leaves them as they are.

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"
)

// ReloadResult says what a reload did.
type ReloadResult struct {
	Added, Removed, Restarted, Kept []string
	// NeedRestart lists the top-level settings that differ from the
	// running config but only take effect on a restart.
	NeedRestart []string
}

// Reload applies cfg, a validated config, to the running gateway. Only one
// reload runs at a time.
func (g *Gateway) Reload(cfg *Config) (ReloadResult, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	var res ReloadResult
	if cfg.Namespace != g.cfg.Namespace {
		// Public names depend on the namespace; changing it under live
		// sessions would rename every tool.
		return res, fmt.Errorf("namespace settings differ; they take effect on a restart")
	}
	old := g.mountList()
	byName := map[string]*mount{}
	for _, m := range old {
		byName[m.name] = m
	}
	var (
		next    []*mount
		started []*mount
		stopped []*mount
		seen    = map[string]bool{}
	)
	for _, uc := range cfg.Upstreams {
		seen[uc.Name] = true
		if m, ok := byName[uc.Name]; ok && reflect.DeepEqual(m.cfg, uc) {
			next = append(next, m)
			res.Kept = append(res.Kept, uc.Name)
			continue
		} else if ok {
			stopped = append(stopped, m)
			res.Restarted = append(res.Restarted, uc.Name)
		} else {
			res.Added = append(res.Added, uc.Name)
		}
		m := g.newMount(uc)
		next = append(next, m)
		started = append(started, m)
	}
	for _, m := range old {
		if !seen[m.name] {
			stopped = append(stopped, m)
			res.Removed = append(res.Removed, m.name)
		}
	}

	g.mountsMu.Lock()
	g.mounts = next
	g.mountsMu.Unlock()
	g.catalog.setMounts(next)
	for _, m := range started {
		m.up.Start()
	}
	// Stop what left after the catalog no longer routes to it; calls in
	// flight on it end with its connection.
	var wg sync.WaitGroup
	for _, m := range stopped {
		wg.Go(func() {
			g.sessions.dropMount(m)
			m.up.Close()
			if !seen[m.name] {
				g.metrics.forgetUpstream(m.name)
			}
		})
	}
	wg.Wait()

	for key, differs := range map[string]bool{
		"listen":          cfg.Listen != g.cfg.Listen,
		"public_url":      cfg.PublicURL != g.cfg.PublicURL,
		"auth":            !reflect.DeepEqual(cfg.Auth, g.cfg.Auth),
		"session_store":   !reflect.DeepEqual(cfg.SessionStore, g.cfg.SessionStore),
		"request_state":   cfg.RequestState != g.cfg.RequestState,
		"replica":         cfg.Replica != g.cfg.Replica,
		"allowed_origins": !reflect.DeepEqual(cfg.AllowedOrigins, g.cfg.AllowedOrigins),
		"max_body_bytes":  cfg.MaxBodyBytes != g.cfg.MaxBodyBytes,
		"log":             cfg.Log != g.cfg.Log,
		"metrics":         cfg.Metrics != g.cfg.Metrics,
		"shutdown_grace":  cfg.ShutdownGrace != g.cfg.ShutdownGrace,
		"fast_path":       cfg.fastPath() != g.cfg.fastPath(),
	} {
		if differs {
			res.NeedRestart = append(res.NeedRestart, key)
		}
	}
	g.log.Info("config reloaded",
		slog.Any("added", res.Added), slog.Any("removed", res.Removed),
		slog.Any("restarted", res.Restarted), slog.Int("kept", len(res.Kept)))
	if len(res.NeedRestart) > 0 {
		g.log.Warn("config changes that need a restart were not applied", slog.Any("settings", res.NeedRestart))
	}
	return res, nil
}

// dropMount closes the sessions' own connections to m, which is going away.
func (s *sessions) dropMount(m *mount) {
	s.mu.Lock()
	live := make([]*liveSession, 0, len(s.live))
	for _, ls := range s.live {
		live = append(live, ls)
	}
	s.mu.Unlock()
	for _, ls := range live {
		ls.mu.Lock()
		u := ls.ups[m]
		delete(ls.ups, m)
		ls.mu.Unlock()
		if u != nil {
			u.Close()
		}
	}
}
