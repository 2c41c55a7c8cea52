// The MCP host: the go-sdk client that talks to the gateway, with the
// handlers that make mcp-chat a full host. It answers sampling requests
// with the chat's model, asks the user for elicitations, offers the working
// directory as a root, and shows progress and server log messages on
// stderr. It also runs the model's tool calls.
//
// Requests from the server (sampling, elicitation) arrive on the go-sdk's
// goroutines while a question is being answered. They run under the
// question's context as well as their own, so Ctrl-C stops them too.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// version is reported in clientInfo.
const version = "0.1.0"

// host is the MCP side of mcp-chat. Its methods are safe for concurrent use.
type host struct {
	term     *terminal
	llm      *llmClient
	client   *mcp.Client
	sampling string // samplingAsk, samplingAllow or samplingDeny

	mu         sync.Mutex // guards the fields below
	session    *mcp.ClientSession
	turn       context.Context // the current question's; nil between questions
	tools      *catalog        // nil until listed, and after list_changed
	toolsGen   int             // counts list_changed notifications
	progress   map[string]string
	nextTokenN int
}

// newHost returns a host whose client offers dir as a root, and sampling
// unless it is samplingDeny.
func newHost(term *terminal, llm *llmClient, dir, sampling string) *host {
	h := &host{term: term, llm: llm, sampling: sampling, progress: map[string]string{}}
	opts := &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{
			RootsV2:     &mcp.RootCapabilities{ListChanged: true},
			Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
		},
		ElicitationHandler:          h.elicit,
		ToolListChangedHandler:      h.toolsChanged,
		LoggingMessageHandler:       h.logMessage,
		ProgressNotificationHandler: h.showProgress,
	}
	if sampling != samplingDeny {
		opts.CreateMessageHandler = h.createMessage
	}
	h.client = mcp.NewClient(&mcp.Implementation{Name: "mcp-chat", Title: "mcp-chat", Version: version}, opts)
	h.client.AddRoots(&mcp.Root{URI: fileURI(dir), Name: filepath.Base(dir)})
	return h
}

// fileURI returns the file:// URI of the absolute path dir.
func fileURI(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// setSession records the connected session.
func (h *host) setSession(cs *mcp.ClientSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.session = cs
}

// setTurn records the context of the question being answered (nil when
// none is).
func (h *host) setTurn(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.turn = ctx
}

// inTurn returns ctx, also cancelled when the current question's context
// is. Call cancel when done.
func (h *host) inTurn(ctx context.Context) (_ context.Context, cancel func()) {
	h.mu.Lock()
	turn := h.turn
	h.mu.Unlock()
	ctx, cancelCtx := context.WithCancel(ctx)
	if turn == nil {
		return ctx, cancelCtx
	}
	stop := context.AfterFunc(turn, cancelCtx)
	return ctx, func() { stop(); cancelCtx() }
}

// catalog returns the server's tools as functions, listing every page when
// they are not known or have changed.
func (h *host) catalog(ctx context.Context) (*catalog, error) {
	h.mu.Lock()
	cs, c, gen := h.session, h.tools, h.toolsGen
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	var tools []*mcp.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, fmt.Errorf("listing tools: %w", err)
		}
		tools = append(tools, t)
	}
	c = newCatalog(tools)
	h.mu.Lock()
	if h.toolsGen == gen {
		h.tools = c
	}
	h.mu.Unlock()
	return c, nil
}

// toolsChanged marks the catalog stale on notifications/tools/list_changed.
func (h *host) toolsChanged(context.Context, *mcp.ToolListChangedRequest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tools = nil
	h.toolsGen++
}

// callTool runs one tool call of the model and returns the text of the
// tool message that answers it. Whatever the model can act on (an unknown
// tool, arguments that are not JSON, a tool error, a JSON-RPC error such as
// invalid params or an unavailable upstream) becomes that text; the error
// is for what ends the question: cancellation, or a lost connection.
func (h *host) callTool(ctx context.Context, cat *catalog, call toolCall) (string, error) {
	name := call.Function.Name
	tool := cat.tool(name)
	if tool == nil {
		h.term.printf("  ! the model called %q, which is not a tool\n", name)
		return fmt.Sprintf("Error: there is no tool named %q.", name), nil
	}
	args := map[string]any{}
	if raw := call.Function.Arguments; raw != "" {
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			h.term.printf("  ! the model called %s with arguments that are not a JSON object\n", name)
			return fmt.Sprintf("Error: the arguments are not a JSON object (%v). Call %s again with valid JSON arguments.", err, name), nil
		}
	}
	h.term.printf("  → %s %s\n", tool.Name, oneLine(call.Function.Arguments, 200))

	token := h.progressToken(tool.Name)
	params := &mcp.CallToolParams{Name: tool.Name, Arguments: args}
	params.SetProgressToken(token)
	h.mu.Lock()
	cs := h.session
	h.mu.Unlock()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) {
			h.term.printf("  ← error: %s\n", oneLine(rpcErr.Message, 200))
			return "Error: " + rpcErr.Message, nil
		}
		return "", fmt.Errorf("calling %s: %w", tool.Name, err)
	}
	text := resultText(res)
	if res.IsError {
		h.term.printf("  ← failed: %s\n", oneLine(text, 200))
	} else {
		h.term.printf("  ← %s\n", oneLine(text, 200))
	}
	return text, nil
}

// progressToken returns a new progress token for a call of tool.
// Notifications may be handled after the call's result (the go-sdk
// dispatches them on another goroutine), so a token's tool is remembered
// for the next keepTokens calls too.
func (h *host) progressToken(tool string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextTokenN++
	delete(h.progress, fmt.Sprintf("mcp-chat-%d", h.nextTokenN-keepTokens))
	token := fmt.Sprintf("mcp-chat-%d", h.nextTokenN)
	h.progress[token] = tool
	return token
}

// keepTokens is how many calls' progress tokens are remembered.
const keepTokens = 64

// showProgress prints a progress notification.
func (h *host) showProgress(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p := req.Params
	h.mu.Lock()
	tool, ok := h.progress[fmt.Sprint(p.ProgressToken)]
	h.mu.Unlock()
	if !ok {
		tool = fmt.Sprint(p.ProgressToken)
	}
	line := "  … " + tool + ": " + formatNumber(p.Progress)
	if p.Total > 0 {
		line += "/" + formatNumber(p.Total)
	}
	if p.Message != "" {
		line += " " + p.Message
	}
	h.term.printf("%s\n", line)
}

// logMessage prints a server log message.
func (h *host) logMessage(_ context.Context, req *mcp.LoggingMessageRequest) {
	p := req.Params
	data, ok := p.Data.(string)
	if !ok {
		b, _ := json.Marshal(p.Data)
		data = string(b)
	}
	logger := ""
	if p.Logger != "" {
		logger = " " + p.Logger
	}
	h.term.printf("  [server %s%s] %s\n", p.Level, logger, data)
}

// formatNumber prints whole numbers without a fraction.
func formatNumber(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprint(int64(f))
	}
	return fmt.Sprintf("%.2f", f)
}
