// The stateless tools: multiply from the quickstart, and slow_count, which
// exists so progress notifications and cancellation can be tested end to end
// through the gateway.

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type multiplyInput struct {
	A float64 `json:"a" jsonschema:"the first factor"`
	B float64 `json:"b" jsonschema:"the second factor"`
}

type multiplyOutput struct {
	Result float64 `json:"result" jsonschema:"the product a × b"`
}

func multiply(_ context.Context, _ *mcp.CallToolRequest, in multiplyInput) (*mcp.CallToolResult, multiplyOutput, error) {
	p := in.A * in.B
	return textResult(strconv.FormatFloat(p, 'g', -1, 64)), multiplyOutput{Result: p}, nil
}

// Limits for slow_count, so a test typo cannot pin a server for hours.
// Larger arguments are clamped, not rejected.
const (
	maxCount = 1000
	maxDelay = 10 * time.Second
)

type slowCountInput struct {
	N       int `json:"n" jsonschema:"how many steps to count (at most 1000)"`
	DelayMS int `json:"delay_ms" jsonschema:"milliseconds to wait before each step (at most 10000)"`
}

type slowCountOutput struct {
	Count int `json:"count" jsonschema:"how many steps were counted"`
}

// slowCount counts to n, waiting delay_ms before each step and reporting
// each step as progress when the caller asked for it. It returns as soon as
// ctx is done, which is how cancellation is observed.
func slowCount(ctx context.Context, req *mcp.CallToolRequest, in slowCountInput) (*mcp.CallToolResult, slowCountOutput, error) {
	if in.N < 0 || in.DelayMS < 0 {
		return nil, slowCountOutput{}, errors.New("n and delay_ms must not be negative")
	}
	n := min(in.N, maxCount)
	delay := min(time.Duration(in.DelayMS)*time.Millisecond, maxDelay)
	token := req.Params.GetProgressToken()

	for i := 1; i <= n; i++ {
		if err := sleep(ctx, delay); err != nil {
			return nil, slowCountOutput{}, fmt.Errorf("counting stopped at %d of %d: %w", i-1, n, err)
		}
		if token == nil {
			continue
		}
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: token,
			Progress:      float64(i),
			Total:         float64(n),
			Message:       fmt.Sprintf("counted %d of %d", i, n),
		})
		if err != nil {
			return nil, slowCountOutput{}, fmt.Errorf("sending progress %d of %d: %w", i, n, err)
		}
	}
	return textResult(fmt.Sprintf("Counted to %d.", n)), slowCountOutput{Count: n}, nil
}

// sleep waits for d, or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
