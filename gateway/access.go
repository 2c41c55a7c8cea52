package gateway

// Access: one policy, two uses. List results (tools, prompts, resources,
// templates) hold only what the caller may use, and every call, get, read,
// subscribe and completion is checked against the same rules. A denied
// request gets exactly the answer an unknown name gets, so it reveals
// nothing the caller's list does not show. Denials are audited as they
// happen; calls, gets and reads that go through are audited when they
// complete, with their outcome and duration (auditCall).
//
// The caller is the principal that package auth put on the request: the
// SDK carries it to handlers in the request's TokenInfo (Streamable HTTP),
// and a legacy SSE session has the principal it was opened with.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth"
)

// principalOf returns the caller of a request, or nil without auth.
func (g *Gateway) principalOf(req mcp.Request) *auth.Principal {
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		if p := auth.PrincipalFromTokenInfo(ex.TokenInfo); p != nil {
			return p
		}
	}
	if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
		if ls := g.sessions.byServer(ss); ls != nil {
			return ls.principal
		}
	}
	return nil
}

func (g *Gateway) allowed(p *auth.Principal, kind auth.Kind, r route) bool {
	return g.auth.Policy().Allowed(p, kind, r.m.name, r.name)
}

// gate checks a routed request against the policy. It returns the error to
// answer with, or nil to let the request through.
func (g *Gateway) gate(ctx context.Context, method string, req mcp.Request) error {
	p := g.principalOf(req)
	deny := func(target string, err error) error {
		auth.Audit(ctx, g.log, p, method, target, auth.OutcomeDenied)
		markDenied(ctx)
		return err
	}
	switch req := req.(type) {
	case *mcp.CallToolRequest:
		if req.Params == nil {
			return nil
		}
		if e, ok := g.catalog.tool(req.Params.Name); ok && !g.allowed(p, auth.KindTool, e.route) {
			return deny(e.m.name+"/"+e.name, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", req.Params.Name)})
		}
	case *mcp.GetPromptRequest:
		if req.Params == nil {
			return nil
		}
		if e, ok := g.catalog.prompt(req.Params.Name); ok && !g.allowed(p, auth.KindPrompt, e.route) {
			return deny(e.m.name+"/"+e.name, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", req.Params.Name)})
		}
	case *mcp.ReadResourceRequest:
		if req.Params != nil {
			return g.gateURI(p, req.Session, req.Params.URI, deny)
		}
	case *mcp.SubscribeRequest:
		if req.Params != nil {
			return g.gateURI(p, req.Session, req.Params.URI, deny)
		}
	case *mcp.SubscriptionsListenRequest:
		// 2026-07-28 subscribes to resources by listening; the SDK makes
		// each a subscribe that passes no middleware, so check them here.
		if req.Params != nil && req.Params.Notifications != nil {
			for _, uri := range req.Params.Notifications.ResourceSubscriptions {
				if err := g.gateURI(p, req.Session, uri, deny); err != nil {
					return err
				}
			}
		}
	case *mcp.CompleteRequest:
		if req.Params == nil || req.Params.Ref == nil {
			return nil
		}
		ref := req.Params.Ref
		switch ref.Type {
		case "ref/prompt":
			if e, ok := g.catalog.prompt(ref.Name); ok && !g.allowed(p, auth.KindPrompt, e.route) {
				return deny(e.m.name+"/"+e.name, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)})
			}
		case "ref/resource":
			r, ok := g.catalog.template(ref.URI)
			if !ok {
				r, ok = g.catalog.resolveURI(ref.URI)
			}
			if ok && !g.allowed(p, auth.KindResource, r) {
				return deny(r.m.name+"/"+r.name, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource or template %q", ref.URI)})
			}
		}
	}
	return nil
}

// auditCall writes the audit line of a call, get or read that passed the
// gate, once it has completed: who (principal), what (action, and name, the
// public tool or prompt name or URI), where (upstream; target is the
// upstream's own name, as in denials), how it ended (outcome: ok, error,
// tool_error, input_required) and how long it took (duration_ms). Never
// arguments. Handlers defer it first thing, with pointers to their results.
func auditCall[R mcp.Result](ctx context.Context, g *Gateway, req mcp.Request, action, name string, r route, start time.Time, res *R, err *error) {
	if !g.log.Enabled(ctx, slog.LevelInfo) || errors.Is(*err, errNeedsStream) {
		return // a fast call given back is audited where it goes on
	}
	log := g.log.With(
		slog.String("name", name),
		slog.String("upstream", r.m.name),
		slog.Float64("duration_ms", milliseconds(time.Since(start))))
	auth.Audit(ctx, log, g.principalOf(req), action, r.m.name+"/"+r.name, callOutcome(*res, *err))
}

func (g *Gateway) gateURI(p *auth.Principal, ss *mcp.ServerSession, uri string, deny func(string, error) error) error {
	r, ok := g.catalog.resolveURI(uri)
	if ok && !g.allowed(p, auth.KindResource, r) {
		return deny(r.m.name+"/"+r.name, resourceNotFound(resourceNotFoundCode(ss), uri))
	}
	return nil
}

// filterList removes from a list result what the caller may not use.
func (g *Gateway) filterList(req mcp.Request, res mcp.Result) {
	p := g.principalOf(req)
	switch res := res.(type) {
	case *mcp.ListToolsResult:
		res.Tools = keep(res.Tools, func(t *mcp.Tool) bool {
			e, ok := g.catalog.tool(t.Name)
			return ok && g.allowed(p, auth.KindTool, e.route)
		})
	case *mcp.ListPromptsResult:
		res.Prompts = keep(res.Prompts, func(pr *mcp.Prompt) bool {
			e, ok := g.catalog.prompt(pr.Name)
			return ok && g.allowed(p, auth.KindPrompt, e.route)
		})
	case *mcp.ListResourcesResult:
		res.Resources = keep(res.Resources, func(r *mcp.Resource) bool {
			rt, ok := g.catalog.resolveURI(r.URI)
			return ok && g.allowed(p, auth.KindResource, rt)
		})
	case *mcp.ListResourceTemplatesResult:
		res.ResourceTemplates = keep(res.ResourceTemplates, func(t *mcp.ResourceTemplate) bool {
			rt, ok := g.catalog.template(t.URITemplate)
			return ok && g.allowed(p, auth.KindResource, rt)
		})
	}
}

// keep returns the elements of s for which ok holds, in a new slice.
func keep[T any](s []T, ok func(T) bool) []T {
	out := make([]T, 0, len(s))
	for _, v := range s {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}
