// The weather_briefing prompt and argument completion. They sit together
// because completion exists to fill in the prompt's (and the alerts
// template's) state argument.

package main

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	promptWeatherBriefing = "weather_briefing"
	argState              = "state"
)

func weatherBriefingPrompt() *mcp.Prompt {
	return &mcp.Prompt{
		Name:        promptWeatherBriefing,
		Title:       "Weather briefing",
		Description: "Ask for a short briefing on the active weather alerts for a US state.",
		Arguments: []*mcp.PromptArgument{{
			Name:        argState,
			Description: "two-letter US state code, e.g. CA",
			Required:    true,
		}},
	}
}

// weatherBriefing answers prompts/get. The SDK does not enforce required
// prompt arguments, so a missing or malformed state is reported here as
// invalid params.
func weatherBriefing(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	code, err := normalizeState(req.Params.Arguments[argState])
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
	}
	return &mcp.GetPromptResult{
		Description: "Weather briefing for " + code,
		Messages: []*mcp.PromptMessage{{
			Role: "user",
			Content: &mcp.TextContent{Text: fmt.Sprintf(
				"Give me a short briefing on the active weather alerts for %s: "+
					"what is happening, where, how severe it is, and what people should do. "+
					"Use the get_alerts tool to look them up.", code)},
		}},
	}, nil
}

// complete is the server's CompletionHandler. It knows one argument, state,
// in two places; any other reference gets an empty list rather than an error,
// so a client probing for completions does not see failures.
func (b *alertBook) complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := req.Params
	values := []string{}
	if p.Argument.Name == argState && completesState(p.Ref) {
		values = b.completeState(p.Argument.Value)
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{
		Values: values,
		Total:  len(values),
	}}, nil
}

// completesState reports whether ref is one of the places a state is asked for.
func completesState(ref *mcp.CompleteReference) bool {
	switch {
	case ref == nil:
		return false
	case ref.Type == "ref/prompt":
		return ref.Name == promptWeatherBriefing
	case ref.Type == "ref/resource":
		return ref.URI == alertsTemplateURI
	}
	return false
}
