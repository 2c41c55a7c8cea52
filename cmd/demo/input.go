// Tools that need input from the client's side (elicitation, sampling,
// roots), written in the 2026-07-28 style: the handler returns input
// requests and is called again with the answers. The SDK serves them to
// every client revision: a 2026-07-28 client gets an input_required result
// and retries; for an older client the SDK sends real requests on the
// session and calls the handler again itself.

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// greetOutput is the result of greet.
type greetOutput struct {
	Greeting string `json:"greeting"`
}

// greet asks for a name (round 1), then for a confirmation of it (round 2),
// carrying the name from round 1 to round 2 in its requestState: a tool that
// needs two rounds, with server state that only the client carries.
func greet(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, greetOutput, error) {
	responses := req.Params.InputResponses
	if name, ok := strings.CutPrefix(req.Params.RequestState, "name="); ok {
		if c, ok := accepted(responses, "confirm"); ok {
			if yes, _ := c["ok"].(bool); yes {
				return nil, greetOutput{Greeting: fmt.Sprintf("Hello, %s!", name)}, nil
			}
			return nil, greetOutput{Greeting: "Hello, whoever you are."}, nil
		}
	}
	if c, ok := accepted(responses, "name"); ok {
		if name, _ := c["name"].(string); name != "" {
			return &mcp.CallToolResult{
				InputRequests: mcp.InputRequestMap{"confirm": &mcp.ElicitParams{
					Message:         fmt.Sprintf("Greet you as %q?", name),
					RequestedSchema: objectSchema("ok", "boolean"),
				}},
				RequestState: "name=" + name,
			}, greetOutput{}, nil
		}
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{"name": &mcp.ElicitParams{
			Message:         "What is your name?",
			RequestedSchema: objectSchema("name", "string"),
		}},
	}, greetOutput{}, nil
}

// objectSchema is a form with one required field.
func objectSchema(field, typ string) map[string]any {
	return map[string]any{
		"type":       "object",
		"properties": map[string]any{field: map[string]any{"type": typ}},
		"required":   []string{field},
	}
}

// accepted returns the content of an accepted elicitation answer.
func accepted(responses mcp.InputResponseMap, key string) (map[string]any, bool) {
	r, ok := responses[key].(*mcp.ElicitResult)
	if !ok || r == nil || r.Action != "accept" {
		return nil, false
	}
	return r.Content, true
}

// summarizeInput is the input of summarize_alerts.
type summarizeInput struct {
	State string `json:"state" jsonschema:"two-letter US state code, e.g. CA"`
}

// summarizeOutput is the result of summarize_alerts.
type summarizeOutput struct {
	Summary string `json:"summary"`
}

// summarizeAlerts asks the client's model (sampling) to summarize a state's
// alerts.
func (b *alertBook) summarizeAlerts(_ context.Context, req *mcp.CallToolRequest, in summarizeInput) (*mcp.CallToolResult, summarizeOutput, error) {
	if r, ok := req.Params.InputResponses["summary"].(*mcp.CreateMessageWithToolsResult); ok && r != nil {
		for _, c := range r.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				return nil, summarizeOutput{Summary: t.Text}, nil
			}
		}
		return nil, summarizeOutput{}, fmt.Errorf("the model answered without text")
	}
	text, err := b.alertsText(in.State)
	if err != nil {
		return nil, summarizeOutput{}, err
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{"summary": &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "Summarize these weather alerts in one sentence:\n" + text}}},
			MaxTokens: 200,
		}},
	}, summarizeOutput{}, nil
}

// rootsOutput is the result of list_roots.
type rootsOutput struct {
	Roots []string `json:"roots"`
}

// listRoots returns the URIs of the client's roots (roots/list).
func listRoots(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, rootsOutput, error) {
	if r, ok := req.Params.InputResponses["roots"].(*mcp.ListRootsResult); ok && r != nil {
		out := rootsOutput{Roots: []string{}}
		for _, root := range r.Roots {
			out.Roots = append(out.Roots, root.URI)
		}
		return nil, out, nil
	}
	return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"roots": &mcp.ListRootsParams{}}}, rootsOutput{}, nil
}
