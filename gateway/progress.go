package gateway

// Progress relay. A client that sends a progress token with a call expects
// notifications/progress with that token on the stream of that call. The
// upstream connection is shared by every client, so two clients may well
// pick the same token: the gateway gives each forwarded call a token of its
// own ("gw-<n>", unique in this process), remembers which client request it
// stands for, and maps it back when the upstream reports progress.
//
// The notification is sent with the handler context of the client's
// request, which is what makes the SDK put it on that request's stream
// (never on another session's, never on the standalone stream). Progress
// that arrives after the call has returned is dropped: the client has its
// answer.

import (
	"context"
	"strconv"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type progressTarget struct {
	ctx     context.Context // the client request's handler context
	session *mcp.ServerSession
	token   any // the client's own token
}

type progressRoutes struct {
	mu   sync.Mutex // guards the fields below
	next uint64
	m    map[string]progressTarget
}

// add registers a client request and returns the token to send upstream and
// a function that forgets it.
func (p *progressRoutes) add(t progressTarget) (string, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]progressTarget{}
	}
	p.next++
	tok := "gw-" + strconv.FormatUint(p.next, 10)
	p.m[tok] = t
	return tok, func() {
		p.mu.Lock()
		delete(p.m, tok)
		p.mu.Unlock()
	}
}

// relay delivers an upstream's progress notification to the client request
// its token stands for.
func (p *progressRoutes) relay(params *mcp.ProgressNotificationParams) {
	if params == nil {
		return
	}
	tok, ok := params.ProgressToken.(string)
	if !ok {
		return
	}
	p.mu.Lock()
	t, ok := p.m[tok]
	p.mu.Unlock()
	if !ok || t.ctx.Err() != nil {
		return
	}
	out := *params
	out.ProgressToken = t.token
	t.session.NotifyProgress(t.ctx, &out)
}

// withProgressToken returns meta with the progress token replaced.
func withProgressToken(meta mcp.Meta, tok string) mcp.Meta {
	out := make(mcp.Meta, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	out["progressToken"] = tok
	return out
}
