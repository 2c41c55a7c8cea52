// Command gateway runs the MCP gateway.
//
//	gateway --config gateway.yaml [--listen addr]   serve
//	gateway validate --config gateway.yaml          check a config: "ok", or every problem and exit 1
//	gateway version                                 print the version
//
// Exit codes: 0 success, 1 a bad config or a failure while serving, 2 bad
// usage.
package main

import (
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
  gateway --config FILE [--listen ADDR]   serve the config (--listen overrides its listen address)
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

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

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
	// Shutdown waits for active requests; event streams only end when their
	// sessions do, so end those first. Upstreams stop after the requests
	// in flight have drained.
	srv.RegisterOnShutdown(g.CloseSessions)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("gateway listening", slog.String("addr", ln.Addr().String()),
		slog.String("mcp", "http://"+ln.Addr().String()+gateway.PathMCP),
		slog.String("sse", "http://"+ln.Addr().String()+gateway.PathSSE),
		slog.String("version", buildVersion()))

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("serving", slog.Any("err", err))
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown incomplete", slog.Any("err", err))
	}
	g.Close() // idempotent; waits for stdio children to exit
	log.Info("stopped")
	return code
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
