// Sampling: a server's sampling/createMessage request answered with the
// chat's model. MCP messages become Chat Completions messages (text as
// text; images and audio as content parts), the system prompt becomes a
// system message, and maxTokens, temperature and stop sequences are passed
// on. Model preferences are shown but the model is always --model.
//
// A human stays in the loop (the spec's SHOULD): with --sampling ask, the
// default, the request is shown and the user approves it before the model
// sees it; declined, or with no one to answer (end of input), the server
// gets an error. --sampling allow answers every request; --sampling deny
// does not offer sampling at all.

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The values of --sampling.
const (
	samplingAsk   = "ask"
	samplingAllow = "allow"
	samplingDeny  = "deny"
)

// errSamplingDeclined is what the server gets for a request the user did
// not approve (the spec's example error).
var errSamplingDeclined = &jsonrpc.Error{Code: -1, Message: "User rejected sampling request"}

// createMessage answers sampling/createMessage with the chat's model.
func (h *host) createMessage(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	ctx, cancel := h.inTurn(ctx)
	defer cancel()
	p := req.Params
	creq, err := samplingRequest(p)
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
	}
	hints := ""
	if mp := p.ModelPreferences; mp != nil && len(mp.Hints) > 0 {
		var names []string
		for _, h := range mp.Hints {
			names = append(names, h.Name)
		}
		hints = " (it prefers " + strings.Join(names, ", ") + ")"
	}
	h.term.printf("  ⇠ the server asks the model for a message: %d message(s)%s\n", len(p.Messages), hints)
	if h.sampling == samplingAsk && !h.approveSampling(ctx, creq) {
		h.term.printf("  ⇢ declined\n")
		return nil, errSamplingDeclined
	}
	rep, err := h.llm.complete(ctx, creq, nil)
	if err != nil {
		h.term.printf("  ⇢ sampling failed: %v\n", err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "sampling failed: " + err.Error()}
	}
	h.term.printf("  ⇢ answered: %s\n", oneLine(rep.Content, 200))
	model := rep.Model
	if model == "" {
		model = h.llm.Model
	}
	return &mcp.CreateMessageResult{
		Content:    &mcp.TextContent{Text: rep.Content},
		Model:      model,
		Role:       "assistant",
		StopReason: stopReason(rep.FinishReason),
	}, nil
}

// samplingRequest converts a sampling request to a Chat Completions
// request (not streamed, without tools).
func samplingRequest(p *mcp.CreateMessageParams) (chatRequest, error) {
	var req chatRequest
	if p.SystemPrompt != "" {
		req.Messages = append(req.Messages, message{Role: "system", Content: p.SystemPrompt})
	}
	for i, m := range p.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return req, fmt.Errorf("messages[%d]: unsupported role %q", i, m.Role)
		}
		msg := message{Role: string(m.Role)}
		switch c := m.Content.(type) {
		case *mcp.TextContent:
			msg.Content = c.Text
		case *mcp.ImageContent:
			msg.Parts = []contentPart{{Type: "image_url", ImageURL: &imageURL{
				URL: "data:" + c.MIMEType + ";base64," + base64.StdEncoding.EncodeToString(c.Data),
			}}}
		case *mcp.AudioContent:
			format := strings.TrimPrefix(strings.TrimPrefix(c.MIMEType, "audio/"), "x-")
			if format == "mpeg" {
				format = "mp3"
			}
			msg.Parts = []contentPart{{Type: "input_audio", InputAudio: &inputAudio{
				Data: base64.StdEncoding.EncodeToString(c.Data), Format: format,
			}}}
		default:
			return req, fmt.Errorf("messages[%d]: unsupported content %T", i, m.Content)
		}
		req.Messages = append(req.Messages, msg)
	}
	req.MaxTokens = p.MaxTokens
	if p.Temperature != 0 {
		t := p.Temperature
		req.Temperature = &t
	}
	req.Stop = p.StopSequences
	return req, nil
}

// stopReason maps a Chat Completions finish reason to MCP's stop reason.
func stopReason(finish string) string {
	switch finish {
	case "stop", "":
		return "endTurn"
	case "length":
		return "maxTokens"
	case "tool_calls", "function_call":
		return "toolUse"
	}
	return finish
}

// approveSampling shows what the model would be sent and asks the user.
// End of input, or Ctrl-C, is no.
func (h *host) approveSampling(ctx context.Context, req chatRequest) bool {
	for _, m := range req.Messages {
		text := m.Content
		if text == "" && len(m.Parts) > 0 {
			text = fmt.Sprintf("(%d media part(s))", len(m.Parts))
		}
		h.term.printf("    %s: %s\n", m.Role, oneLine(text, 200))
	}
	if req.MaxTokens > 0 {
		h.term.printf("    (at most %d tokens)\n", req.MaxTokens)
	}
	for {
		ans, err := h.term.readLine(ctx, "  Let the model answer it? [y/N]: ")
		if err != nil {
			h.term.printf("  (no answer: declined; --sampling allow answers every request)\n")
			return false
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "y", "yes":
			return true
		case "", "n", "no":
			return false
		}
	}
}
