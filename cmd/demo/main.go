// Command demo is the project's demo MCP server: the upstream that the
// gateway's default configuration mounts, and the server its tests run.
//
// It offers what the classic MCP quickstart shows (multiply, get_alerts from
// bundled sample data), a note memory shared by every session of the process,
// a resource, a resource template, a prompt with argument completion, and
// slow_count for exercising progress and cancellation.
//
// Usage:
//
//	demo --stdio                      serve on stdin/stdout
//	demo --http 127.0.0.1:13002       Streamable HTTP at /mcp, legacy SSE at /sse
//	demo --stdio --http ADDR          both at once, one memory
//
// Logs go to stderr only, since stdout is the protocol channel in stdio
// mode. With --http the bound address is logged as
//
//	time=... level=INFO msg=listening addr=127.0.0.1:43817
//
// so a test can pass port 0 and read the real port back.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// config is the parsed command line.
type config struct {
	stdio     bool
	httpAddr  string
	stateless bool
	name      string
}

// parseFlags parses args. If it returns an error, the process should exit
// with code; the problem has already been written to stderr.
func parseFlags(args []string, stderr io.Writer) (cfg config, code int, err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.stdio, "stdio", false, "serve MCP on stdin/stdout; exit when stdin closes")
	fs.StringVar(&cfg.httpAddr, "http", "", "serve Streamable HTTP at /mcp and legacy SSE at /sse on this `address` (port 0 picks a free port)")
	fs.BoolVar(&cfg.stateless, "stateless", false, "with --http, serve /mcp in stateless mode")
	fs.StringVar(&cfg.name, "name", "demo", "server `name` reported in serverInfo")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: demo [--stdio] [--http ADDR [--stateless]] [--name NAME]\n\n"+
			"Demo MCP server. At least one of --stdio and --http is required.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, err
		}
		return cfg, 2, err
	}
	var problem string
	switch {
	case fs.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case !cfg.stdio && cfg.httpAddr == "":
		problem = "one of --stdio or --http is required"
	case cfg.stateless && cfg.httpAddr == "":
		problem = "--stateless requires --http"
	case cfg.name == "":
		problem = "--name must not be empty"
	}
	if problem != "" {
		fmt.Fprintf(stderr, "demo: %s\n", problem)
		fs.Usage()
		return cfg, 2, errors.New(problem)
	}
	return cfg, 0, nil
}

// run serves until stdin closes (with --stdio) or ctx is done, and returns
// the process exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, code, err := parseFlags(args, stderr)
	if err != nil {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// The SDK logs routine events at Info, some with session ids; keep
	// only its warnings and errors.
	sdkLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// serving ends at shutdown; it stops stdio and cancels running calls.
	serving, stopServing := context.WithCancel(ctx)
	defer stopServing()
	server, err := newServer(serving, cfg.name, sdkLog)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "building server", slog.Any("err", err))
		return 1
	}
	log.LogAttrs(ctx, slog.LevelInfo, "starting", slog.String("name", cfg.name),
		slog.Bool("stdio", cfg.stdio), slog.Bool("http", cfg.httpAddr != ""), slog.Bool("stateless", cfg.stateless))

	// A nil channel blocks forever in select: that is how a transport that
	// is not running (or has finished) drops out of the loop below.
	var httpDone chan error
	var hs *httpServer
	if cfg.httpAddr != "" {
		hs, err = listenHTTP(cfg.httpAddr, newHTTPHandler(server, cfg.stateless, sdkLog))
		if err != nil {
			log.LogAttrs(ctx, slog.LevelError, "http unavailable", slog.String("addr", cfg.httpAddr), slog.Any("err", err))
			if !cfg.stdio {
				return 1
			}
		} else {
			log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("addr", hs.addr()))
			httpDone = make(chan error, 1)
			go func() { httpDone <- hs.serve() }()
		}
	}

	var stdioDone chan error
	if cfg.stdio {
		stdioDone = make(chan error, 1)
		go func() { stdioDone <- serveStdio(serving, server) }()
	}

	reason := ""
	code = 0
wait:
	for {
		select {
		case <-ctx.Done():
			reason = "signal"
			break wait
		case err := <-stdioDone:
			stdioDone = nil
			reason = "stdin closed"
			if err != nil {
				log.LogAttrs(ctx, slog.LevelError, "stdio failed", slog.Any("err", err))
				reason, code = "stdio failed", 1
			}
			break wait
		case err := <-httpDone:
			httpDone = nil
			log.LogAttrs(ctx, slog.LevelError, "http failed", slog.Any("err", err))
			if !cfg.stdio {
				reason, code = "http failed", 1
				break wait
			}
			// Keep serving stdio, as when --http could not listen.
		}
	}

	log.LogAttrs(ctx, slog.LevelInfo, "shutting down", slog.String("reason", reason))
	stopServing()
	if httpDone != nil {
		if err := hs.shutdown(ctx); err != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "http shutdown incomplete", slog.Any("err", err))
		}
		if err := <-httpDone; err != nil {
			log.LogAttrs(ctx, slog.LevelError, "http failed", slog.Any("err", err))
		}
	}
	if stdioDone != nil {
		<-stdioDone
	}
	log.LogAttrs(ctx, slog.LevelInfo, "stopped", slog.Int("code", code))
	return code
}
