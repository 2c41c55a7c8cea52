// Command gateway runs the MCP gateway.
//
//	gateway --config gateway.yaml [--listen addr]   serve (SIGHUP or a change of the file reloads it)
//	gateway validate --config gateway.yaml          check a config: "ok", or every problem and exit 1
//	gateway version                                 print the version
//
// Exit codes: 0 success, 1 a bad config or a failure while serving, 2 bad
// usage.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/gateway/cmd/internal/gctune"
	"github.com/mcpgw/gateway/gateway"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "gateway", buildVersion())
		return 0
	case "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  gateway --config FILE [--listen ADDR] [--watch-config 2s]
                                          serve the config (--listen overrides its listen address);
                                          SIGHUP or a change of FILE reloads it; SIGTERM drains
                                          (shutdown_grace), a second SIGTERM exits at once
  gateway validate --config FILE          check FILE: prints "ok" or every problem (exit 1)
  gateway version                         print the version
`)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gateway validate: --config FILE is required")
		return 2
	}
	if _, err := gateway.LoadConfig(*path, nil); err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", *path, indent(err.Error()))
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (required)")
	listen := fs.String("listen", "", "listen address, overriding the config's (host:port)")
	watchInterval := fs.Duration("watch-config", 2*time.Second, "how often to check the config file for changes to reload (0: only on SIGHUP)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gateway: --config FILE is required")
		usage(stderr)
		return 2
	}
	cfg, err := gateway.LoadConfig(*path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", *path, indent(err.Error()))
		return 1
	}
	if *listen != "" {
		cfg.Listen = *listen
		if err := cfg.Validate(); err != nil {
			fmt.Fprintf(stderr, "--listen:\n%v\n", indent(err.Error()))
			return 1
		}
	}
	log := newLogger(cfg.Log, stderr)
	gc, err := gctune.Apply()
	if err != nil {
		log.Warn("the container's memory limit could not be read; no GOMEMLIMIT set", slog.Any("err", err))
	}

	// SIGINT/SIGTERM shut down (a second one exits at once); SIGHUP
	// reloads the config, as does a change of the file.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	g, err := gateway.New(cfg, &gateway.Options{Logger: log, Version: buildVersion()})
	if err != nil {
		log.Error("starting gateway", slog.Any("err", err))
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listening", slog.String("addr", cfg.Listen), slog.Any("err", err))
		g.Close()
		return 1
	}
	g.SetAdvertiseURL(ln.Addr())
	g.Start()

	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: it would cut long-lived event streams.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("gateway listening", slog.String("addr", ln.Addr().String()),
		slog.String("mcp", "http://"+ln.Addr().String()+gateway.PathMCP),
		slog.String("sse", "http://"+ln.Addr().String()+gateway.PathSSE),
		slog.String("version", buildVersion()), slog.String("gc", gc.String()))
	if cfg.Metrics.Listen != "" {
		// Prometheus scrapes its own port, which needs no token.
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			log.Error("listening for metrics", slog.String("addr", cfg.Metrics.Listen), slog.Any("err", err))
			srv.Close()
			g.Close()
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle(gateway.PathMetrics, g.MetricsHandler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		log.Info("metrics listening", slog.String("addr", mln.Addr().String()))
	}

	changed := watchFile(ctx, *path, *watchInterval)
	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(g, *path, *listen, log, "SIGHUP")
				continue
			}
			log.Info("shutting down", slog.String("signal", sig.String()))
			break loop
		case <-changed:
			reload(g, *path, *listen, log, "file changed")
		case err := <-errc:
			log.Error("serving", slog.Any("err", err))
			code = 1
			break loop
		}
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		shutdown(srv, g, cfg.ShutdownGrace.Duration, log)
	}()
	for {
		select {
		case <-done:
			log.Info("stopped")
			return code
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				continue
			}
			// Stdio children die with the process (Pdeathsig).
			log.Warn("second signal: exiting without waiting", slog.String("signal", sig.String()))
			return 1
		}
	}
}

// shutdown stops taking new work (readiness false, listener closed), lets
// the calls in flight finish within grace, then ends the sessions' streams
// and stops the upstreams and their children.
func shutdown(srv *http.Server, g *gateway.Gateway, grace time.Duration, log *slog.Logger) {
	g.BeginShutdown()
	served := make(chan error, 1)
	go func() { served <- srv.Shutdown(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := g.Drain(ctx); err != nil {
		log.Warn("calls still running at the end of the grace period are ended", slog.Duration("grace", grace))
		g.EndCalls()
	}
	// Open streams end with their sessions; Shutdown returns once they have.
	g.CloseSessions()
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("shutdown incomplete", slog.Any("err", err))
		}
	case <-time.After(5 * time.Second):
		srv.Close()
	}
	g.Close() // waits for stdio children to exit
}

// reload applies the config file to the running gateway; an invalid file
// is refused and the running config stays.
func reload(g *gateway.Gateway, path, listen string, log *slog.Logger, why string) {
	cfg, err := gateway.LoadConfig(path, nil)
	if err == nil && listen != "" {
		cfg.Listen = listen
		err = cfg.Validate()
	}
	if err != nil {
		log.Error("config reload refused; the running config stays", slog.String("trigger", why), slog.String("problems", err.Error()))
		return
	}
	if _, err := g.Reload(cfg); err != nil {
		log.Error("config reload refused; the running config stays", slog.String("trigger", why), slog.Any("err", err))
	}
}

// watchFile reports changes of the file's content, checked every interval
// (0: never). Polling the content, rather than watching inodes, also sees a
// Kubernetes ConfigMap update, which swaps a symlinked directory.
func watchFile(ctx context.Context, path string, interval time.Duration) <-chan struct{} {
	changed := make(chan struct{}, 1)
	if interval <= 0 {
		return changed
	}
	last, _ := os.ReadFile(path)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := os.ReadFile(path)
			if err != nil || bytes.Equal(now, last) {
				continue
			}
			last = now
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	return changed
}

func newLogger(c gateway.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
