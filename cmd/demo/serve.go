// Serving one mcp.Server over stdio and over HTTP. Both may run at once in
// one process; run (main.go) decides how their failures and ends combine.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveStdio serves one session on stdin/stdout. It returns nil when the
// client closes stdin, or when ctx is done.
func serveStdio(ctx context.Context, s *mcp.Server) error {
	ss, err := s.Connect(ctx, &mcp.StdioTransport{}, nil)
	if err != nil {
		return fmt.Errorf("connecting stdio: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- ss.Wait() }()
	select {
	case err := <-ended:
		if err != nil {
			return fmt.Errorf("stdio session: %w", err)
		}
		return nil
	case <-ctx.Done():
		// Closing does not interrupt a read blocked on stdin, so the Wait
		// goroutine may outlive this call; the process is exiting anyway.
		_ = ss.Close()
		return nil
	}
}

// newHTTPHandler routes Streamable HTTP to /mcp and the legacy 2024-11-05
// HTTP+SSE transport to /sse (its message endpoint is /sse?sessionid=...).
// logger receives the SDK's transport logs; nil discards them.
func newHTTPHandler(s *mcp.Server, stateless bool, logger *slog.Logger) http.Handler {
	getServer := func(*http.Request) *mcp.Server { return s }
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless: stateless,
		Logger:    logger,
		// A stateless request is over when its POST is; let slow_count see that.
		PropagateRequestCancellation: true,
	}))
	mux.Handle("/sse", mcp.NewSSEHandler(getServer, nil))
	return mux
}

// shutdownGrace bounds how long shutdown waits for in-flight HTTP requests.
const shutdownGrace = 5 * time.Second

// httpServer is an http.Server already bound to its listener, so the actual
// address (for port 0) is known before serving starts.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// listenHTTP binds addr. The returned server does not serve until serve.
func listenHTTP(addr string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	// Request contexts derive from streamsCtx, cancelled when Shutdown
	// starts: SSE streams (GET /sse, the standalone GET /mcp) never end on
	// their own, and Shutdown would otherwise wait out its whole grace.
	streamsCtx, endStreams := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return streamsCtx },
	}
	srv.RegisterOnShutdown(endStreams)
	return &httpServer{srv: srv, ln: ln}, nil
}

// addr is the bound address, e.g. 127.0.0.1:43817.
func (h *httpServer) addr() string { return h.ln.Addr().String() }

// serve serves until shutdown, when it returns nil.
func (h *httpServer) serve() error {
	if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving http: %w", err)
	}
	return nil
}

// shutdown stops accepting, ends open streams and waits up to shutdownGrace
// for in-flight requests. ctx may already be cancelled (by a signal); only
// its values are used.
func (h *httpServer) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting down http: %w", err)
	}
	return nil
}
