// The conversation: the loop that asks the model, runs the tool calls it
// requests through MCP (in the order it gave them), feeds the results back
// and asks again, until the model answers in text or --max-steps model
// requests have been made.

package main

import (
	"context"
	"fmt"
)

// chat is one conversation. It is used by one goroutine at a time.
type chat struct {
	llm      *llmClient
	host     *host
	term     *terminal
	stream   bool
	maxSteps int
	history  []message
}

// ask answers question, writing the model's text to stdout as it arrives.
// If it fails or is cancelled, the conversation is left as it was before
// the question, so that a half-answered question cannot leave a tool call
// without its result in the history.
func (c *chat) ask(ctx context.Context, question string) error {
	mark := len(c.history)
	c.history = append(c.history, message{Role: "user", Content: question})
	if err := c.answer(ctx); err != nil {
		c.history = c.history[:mark]
		return err
	}
	return nil
}

// answer asks the model about the conversation so far and runs its tool
// calls, until it answers in text.
func (c *chat) answer(ctx context.Context) error {
	for step := range c.maxSteps {
		cat, err := c.host.catalog(ctx)
		if err != nil {
			return err
		}
		req := chatRequest{Messages: c.history, Tools: cat.defs, Stream: c.stream}
		rep, err := c.llm.complete(ctx, req, func(s string) { c.term.out.WriteString(s) })
		c.term.out.endLine()
		if err != nil {
			return err
		}
		for i := range rep.ToolCalls {
			// Some local servers send no ids; the tool messages need them.
			if rep.ToolCalls[i].ID == "" {
				rep.ToolCalls[i].ID = fmt.Sprintf("call_%d_%d", step, i)
			}
		}
		c.history = append(c.history, message{Role: "assistant", Content: rep.Content, ToolCalls: rep.ToolCalls})
		if len(rep.ToolCalls) == 0 {
			if rep.Content == "" {
				c.term.printf("(the model returned an empty answer; finish reason %q)\n", rep.FinishReason)
			}
			return nil
		}
		for _, call := range rep.ToolCalls {
			text, err := c.host.callTool(ctx, cat, call)
			if err != nil {
				return err
			}
			c.history = append(c.history, message{Role: "tool", ToolCallID: call.ID, Content: text})
		}
	}
	return fmt.Errorf("the model made %d requests without answering (raise --max-steps)", c.maxSteps)
}
