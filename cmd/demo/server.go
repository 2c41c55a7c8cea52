// Building the one mcp.Server that every transport of the process shares;
// sharing it is what makes the memory tools see one store.

package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// version is reported in serverInfo.
const version = "0.1.0"

// newServer returns the demo server, named name in serverInfo so that tests
// can tell two copies apart. serving is the lifetime of the whole server:
// when it is done, every request still being handled is cancelled. logger
// receives the SDK's own logs; nil discards them.
func newServer(serving context.Context, name string, logger *slog.Logger) (*mcp.Server, error) {
	book, err := newAlertBook(sampleAlerts)
	if err != nil {
		return nil, fmt.Errorf("loading sample alerts: %w", err)
	}
	mem := &memory{}

	s := mcp.NewServer(&mcp.Implementation{Name: name, Title: "MCP demo server", Version: version}, &mcp.ServerOptions{
		Instructions:      "Demo server: weather alerts from bundled sample data, a multiply tool, a shared note memory, slow_count for testing progress and cancellation, and greet, summarize_alerts and list_roots, which ask the client for input (elicitation, sampling, roots).",
		Logger:            logger,
		CompletionHandler: book.complete,
	})

	mcp.AddTool(s, &mcp.Tool{
		Name:        "multiply",
		Description: "Multiply two numbers.",
	}, multiply)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_alerts",
		Description: "Get active weather alerts for a US state (from bundled sample data).",
	}, book.getAlerts)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "save_memory",
		Description: "Save a note to the server's memory and return its id. The memory is shared by all sessions and lost on restart.",
	}, mem.saveTool)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "search_memory",
		Description: "Return the saved notes that contain the query (case-insensitive).",
	}, mem.searchTool)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "slow_count",
		Description: "Count to n, waiting delay_ms before each step and sending a progress notification per step if the request has a progress token. Stops when cancelled.",
	}, slowCount)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "greet",
		Description: "Ask the user's name (elicitation), confirm it in a second round, and greet them.",
	}, greet)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "summarize_alerts",
		Description: "Summarize a state's alerts in one sentence with the client's model (sampling).",
	}, book.summarizeAlerts)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_roots",
		Description: "List the client's roots (roots/list).",
	}, listRoots)

	s.AddResource(&mcp.Resource{
		URI:         alertsSampleURI,
		Name:        "sample_alerts",
		Title:       "Sample weather alerts",
		Description: "All bundled sample alerts, keyed by state code.",
		MIMEType:    "application/json",
	}, book.readSample)
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: alertsTemplateURI,
		Name:        "state_alerts",
		Title:       "Weather alerts for a state",
		Description: "The sample alerts for one state, by two-letter code.",
		MIMEType:    "application/json",
	}, book.readState)

	s.AddPrompt(weatherBriefingPrompt(), weatherBriefing)

	s.AddReceivingMiddleware(cancelWhenDone(serving))
	return s, nil
}

// cancelWhenDone returns middleware that cancels each request's context once
// serving is done. The SDK does not derive handler contexts from the
// connection, and ServerSession.Close waits for running handlers, so without
// this a SIGTERM during a long slow_count would wait for it to finish.
func cancelWhenDone(serving context.Context) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(serving, cancel)
			defer stop()
			return next(ctx, method, req)
		}
	}
}
