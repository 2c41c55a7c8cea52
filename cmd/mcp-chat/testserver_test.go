package main

// The test MCP server: tools that make requests of the client (sampling,
// elicitation, roots) and send it log messages and progress, so that
// mcp-chat's host side can be tested through the gateway. TestMain runs it
// on stdio when testServerEnv is set; the gateway mounts it per-session.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveTestServer serves the test server on stdin/stdout until stdin
// closes or SIGTERM, and returns the exit code.
func serveTestServer() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := newTestServer(nil).Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "test server:", err)
		return 1
	}
	return 0
}

// newTestServer returns the test server. Its tool "block" waits until the
// call is cancelled and then sends on cancelled, if that is not nil.
func newTestServer(cancelled chan<- struct{}) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "chat-test", Version: "1"}, nil)

	type textIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "summarize", Description: "Summarize text with the client's model (sampling)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				SystemPrompt: "You write one-line summaries.",
				Messages:     []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "Summarize: " + in.Text}}},
				MaxTokens:    64,
				ModelPreferences: &mcp.ModelPreferences{
					Hints: []*mcp.ModelHint{{Name: "small"}},
				},
			})
			if err != nil {
				return nil, nil, fmt.Errorf("sampling: %w", err)
			}
			text, _ := res.Content.(*mcp.TextContent)
			if text == nil {
				return nil, nil, fmt.Errorf("sampling returned %T", res.Content)
			}
			return textResult(fmt.Sprintf("summary by %s: %s", res.Model, text.Text)), nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "register", Description: "Ask the user for their details (elicitation)."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "Who are you?",
				RequestedSchema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"name":  map[string]any{"type": "string", "title": "Name"},
						"age":   map[string]any{"type": "integer", "minimum": 0},
						"color": map[string]any{"type": "string", "enum": []string{"red", "green", "blue"}},
						"news":  map[string]any{"type": "boolean", "default": false},
						"score": map[string]any{"type": "number"},
					},
					"required": []string{"name", "age"},
				},
			})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			data, _ := json.Marshal(res)
			return textResult(string(data)), nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "open_page", Description: "Ask the user to open a URL (URL elicitation)."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Mode: "url", Message: "Authorize the demo", URL: "https://example.com/authorize?x=1", ElicitationID: "e1",
			})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			return textResult("action: " + res.Action), nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "where", Description: "List the client's roots."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("roots: %w", err)
			}
			var uris []string
			for _, r := range res.Roots {
				uris = append(uris, r.URI)
			}
			return textResult("roots: " + strings.Join(uris, " ")), nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "chatty", Description: "Log a message and report progress."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "warning", Logger: "chatty", Data: "disk almost full"})
			if tok := req.Params.GetProgressToken(); tok != nil {
				for i := 1; i <= 2; i++ {
					req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 2, Message: fmt.Sprintf("step %d", i)})
				}
			}
			return textResult("chatty done"), nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "explode", Description: "Always fails."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "disk on fire"}}}, nil, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "Wait until cancelled."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 0, Message: "blocking"})
			<-ctx.Done()
			if cancelled != nil {
				cancelled <- struct{}{}
			}
			return nil, nil, ctx.Err()
		})

	return s
}

// startTestServer serves the test server over Streamable HTTP on httptest
// and returns its URL, for what the gateway does not relay.
func startTestServer(t *testing.T, cancelled chan<- struct{}) string {
	s := newTestServer(cancelled)
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
