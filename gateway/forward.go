package gateway

// Forwarding: each routed request goes to the owning upstream under its own
// name or URI, bounded by the upstream's timeout, and its result comes back
// with every URI rewritten to its public form.
//
// When the caller's context ends (the client sent notifications/cancelled,
// or a 2026-07-28 client closed its stream) or the timeout fires, the SDK
// cancels the upstream call with notifications/cancelled.
//
// Errors that clients see are JSON-RPC errors. An upstream's own JSON-RPC
// error passes through unchanged; anything else becomes an error that names
// the upstream and the kind of failure, never internal detail (addresses,
// stack text), which goes to the log instead.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// CodeResourceNotFound is MCP's error code for an unknown resource (2025 revisions).
const CodeResourceNotFound = -32002

func (g *Gateway) toolHandler(r route) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		defer auditCall(ctx, g, req, "tools/call", req.Params.Name, r, time.Now(), &res, &err)
		digest := lazyDigest("tools/call", req.Params.Name, req.Params.Arguments)
		cont, err := g.resume(req, req.Params.RequestState, req.Params.InputResponses, digest)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, r.m.timeout)
		defer cancel()
		var upTok string
		if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
			var forget func()
			upTok, forget = g.progress.add(progressTarget{ctx: ctx, session: req.Session, token: tok})
			defer forget()
		}
		res, ask, up, err := forward(ctx, g, req, r.m, digest, cont, func(ctx context.Context, cs *mcp.ClientSession, cont continuation) (*mcp.CallToolResult, error) {
			params := &mcp.CallToolParams{Meta: callMeta(req.Params.Meta, req.Session, cs), Name: r.name, Arguments: req.Params.Arguments,
				InputResponses: cont.responses, RequestState: cont.upstreamState}
			if upTok != "" {
				params.Meta = withProgressToken(params.Meta, upTok)
			}
			return observeUpstream(g.metrics, r.m.name, "tools/call", func() (*mcp.CallToolResult, error) { return cs.CallTool(ctx, params) })
		})
		if err != nil {
			return nil, g.upstreamError(ctx, r.m, "tools/call", err)
		}
		if ask != nil {
			return &mcp.CallToolResult{InputRequests: ask.requests, RequestState: ask.state}, nil
		}
		if upTok != "" && up != nil {
			// Progress sent before the result goes out before it.
			up.WaitProgress(ctx, upTok)
		}
		r.m.rewriteContent(res.Content)
		return &mcp.CallToolResult{Meta: resultMeta(res.Meta), Content: res.Content, StructuredContent: res.StructuredContent, IsError: res.IsError}, nil
	}
}

func (g *Gateway) promptHandler(r route) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (res *mcp.GetPromptResult, err error) {
		defer auditCall(ctx, g, req, "prompts/get", req.Params.Name, r, time.Now(), &res, &err)
		digest := lazyDigest("prompts/get", req.Params.Name, req.Params.Arguments)
		cont, err := g.resume(req, req.Params.RequestState, req.Params.InputResponses, digest)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, r.m.timeout)
		defer cancel()
		res, ask, _, err := forward(ctx, g, req, r.m, digest, cont, func(ctx context.Context, cs *mcp.ClientSession, cont continuation) (*mcp.GetPromptResult, error) {
			params := &mcp.GetPromptParams{Meta: callMeta(req.Params.Meta, req.Session, cs), Name: r.name, Arguments: req.Params.Arguments,
				InputResponses: cont.responses, RequestState: cont.upstreamState}
			return observeUpstream(g.metrics, r.m.name, "prompts/get", func() (*mcp.GetPromptResult, error) { return cs.GetPrompt(ctx, params) })
		})
		if err != nil {
			return nil, g.upstreamError(ctx, r.m, "prompts/get", err)
		}
		if ask != nil {
			return &mcp.GetPromptResult{InputRequests: ask.requests, RequestState: ask.state}, nil
		}
		for _, msg := range res.Messages {
			if msg != nil {
				r.m.rewriteContent([]mcp.Content{msg.Content})
			}
		}
		return &mcp.GetPromptResult{Meta: resultMeta(res.Meta), Description: res.Description, Messages: res.Messages}, nil
	}
}

// readResource serves resources/read for every public URI: listed
// resources, URIs under a mounted prefix, and URIs that a template of an
// upstream mounted without prefix matches.
func (g *Gateway) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (res *mcp.ReadResourceResult, err error) {
	uri := req.Params.URI
	notFound := resourceNotFoundCode(req.Session)
	r, ok := g.catalog.resolveURI(uri)
	if !ok {
		return nil, resourceNotFound(notFound, uri)
	}
	defer auditCall(ctx, g, req, "resources/read", uri, r, time.Now(), &res, &err)
	digest := lazyDigest("resources/read", uri, nil)
	cont, err := g.resume(req, req.Params.RequestState, req.Params.InputResponses, digest)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.m.timeout)
	defer cancel()
	res, ask, _, err := forward(ctx, g, req, r.m, digest, cont, func(ctx context.Context, cs *mcp.ClientSession, cont continuation) (*mcp.ReadResourceResult, error) {
		params := &mcp.ReadResourceParams{Meta: callMeta(req.Params.Meta, req.Session, cs), URI: r.name,
			InputResponses: cont.responses, RequestState: cont.upstreamState}
		return observeUpstream(g.metrics, r.m.name, "resources/read", func() (*mcp.ReadResourceResult, error) { return cs.ReadResource(ctx, params) })
	})
	if err != nil {
		var werr *jsonrpc.Error
		if errors.As(err, &werr) && isResourceNotFound(werr) {
			// Say it in the client's revision, with the URI it asked for.
			return nil, resourceNotFound(notFound, uri)
		}
		return nil, g.upstreamError(ctx, r.m, "resources/read", err)
	}
	if ask != nil {
		return ask.readResult()
	}
	for _, c := range res.Contents {
		if c != nil {
			c.URI = publicURI(r.m.prefix, c.URI)
		}
	}
	return &mcp.ReadResourceResult{Meta: resultMeta(res.Meta), Cacheable: res.Cacheable, Contents: res.Contents}, nil
}

// complete routes completion/complete by its reference.
func (g *Gateway) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	ref := req.Params.Ref
	if ref == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "completion reference is missing"}
	}
	var r route
	switch ref.Type {
	case "ref/prompt":
		e, ok := g.catalog.prompt(ref.Name)
		if !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)}
		}
		r = e.route
	case "ref/resource":
		var ok bool
		if r, ok = g.catalog.template(ref.URI); !ok {
			if r, ok = g.catalog.resolveURI(ref.URI); !ok {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource or template %q", ref.URI)}
			}
		}
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown completion reference type %q", ref.Type)}
	}
	ctx, cancel := context.WithTimeout(ctx, r.m.timeout)
	defer cancel()
	session, _, done, err := g.upstreamFor(ctx, req.Session, r.m)
	if err != nil {
		return nil, g.upstreamError(ctx, r.m, "completion/complete", err)
	}
	defer done()
	params := *req.Params
	params.Meta = upstreamMeta(params.Meta)
	upRef := *ref
	if upRef.Type == "ref/prompt" {
		upRef.Name = r.name
	} else {
		upRef.URI = r.name
	}
	params.Ref = &upRef
	res, err := observeUpstream(g.metrics, r.m.name, "completion/complete", func() (*mcp.CompleteResult, error) { return session.Complete(ctx, &params) })
	if err != nil {
		return nil, g.upstreamError(ctx, r.m, "completion/complete", err)
	}
	return res, nil
}

// upstreamMeta is the _meta to send upstream: the client's, less the
// per-request protocol fields of 2026-07-28 (version, capabilities, client
// info, log level), which describe the client's exchange with the gateway,
// not the gateway's with the upstream. progressToken and custom keys pass.
func upstreamMeta(m mcp.Meta) mcp.Meta {
	if len(m) == 0 {
		return m
	}
	out := make(mcp.Meta, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "io.modelcontextprotocol/") {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// resultMeta is the _meta of an upstream's result as the gateway passes it
// on: the upstream's own protocol fields (its serverInfo, on 2026-07-28)
// describe the upstream's exchange with the gateway, and are dropped. A
// result rebuilt from its exported fields also drops the upstream's
// revision marker (resultType), which the SDK sets anew for clients that
// speak a revision that has one.
func resultMeta(m mcp.Meta) mcp.Meta { return upstreamMeta(m) }

// resourceNotFoundCode is the "resource not found" code of the client's
// revision: -32002 for 2025-era sessions, -32602 from 2026-07-28 on.
func resourceNotFoundCode(ss *mcp.ServerSession) int64 {
	if ss != nil {
		if p := ss.InitializeParams(); p != nil && p.ProtocolVersion != "" && p.ProtocolVersion < version20260728 {
			return CodeResourceNotFound
		}
	}
	return jsonrpc.CodeInvalidParams
}

// resourceNotFound is the error for an unknown resource, with the URI in its
// data as the spec recommends.
func resourceNotFound(code int64, uri string) *jsonrpc.Error {
	data, _ := json.Marshal(map[string]string{"uri": uri})
	return &jsonrpc.Error{Code: code, Message: fmt.Sprintf("resource %q not found", uri), Data: data}
}

// isResourceNotFound recognizes an upstream's "resource not found" in
// either revision's code.
func isResourceNotFound(e *jsonrpc.Error) bool {
	return e.Code == CodeResourceNotFound ||
		e.Code == jsonrpc.CodeInvalidParams && strings.Contains(strings.ToLower(e.Message), "not found")
}

// upstreamError turns a failed upstream call into the error the client sees.
func (g *Gateway) upstreamError(ctx context.Context, m *mount, method string, err error) error {
	if errors.Is(err, errNeedsStream) {
		return err // not a failure: the call goes on on the SDK's path
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr // the upstream's own answer
	}
	var msg string
	switch {
	case errors.Is(err, upstream.ErrUnavailable):
		g.metrics.upstreamUnavailable(m.name, method)
		msg = fmt.Sprintf("upstream %q is unavailable", m.name)
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("upstream %q did not answer within %s", m.name, m.timeout)
	case errors.Is(err, context.Canceled):
		msg = fmt.Sprintf("request to upstream %q was cancelled", m.name)
	default:
		msg = fmt.Sprintf("upstream %q failed to answer", m.name)
	}
	g.log.LogAttrs(ctx, slog.LevelWarn, "upstream call failed",
		slog.String("upstream", m.name), slog.String("method", method), slog.Any("err", err))
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: msg}
}

// rewriteContent gives resource links and embedded resources their public URIs.
func (m *mount) rewriteContent(content []mcp.Content) {
	if m.prefix == "" {
		return
	}
	for _, c := range content {
		switch c := c.(type) {
		case *mcp.ResourceLink:
			c.URI = publicURI(m.prefix, c.URI)
		case *mcp.EmbeddedResource:
			if c.Resource != nil {
				c.Resource.URI = publicURI(m.prefix, c.Resource.URI)
			}
		}
	}
}
