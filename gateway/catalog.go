package gateway

// The merged catalog. Each upstream's catalog (tools, prompts, resources,
// resource templates) is filtered by its config, renamed into the public
// namespace and installed on the front door's mcp.Server, which pages list
// results and tells connected clients about changes (list_changed,
// debounced by the SDK). The catalog keeps tables from public names and URIs
// to routes: a route names the mount and the upstream's own name or URI.
//
// A rebuild recomputes the whole public view from the upstreams' current
// catalogs, in config order, and applies only the difference to the server,
// so an unchanged entry never causes a list_changed. Rebuilds are serialized
// by mu; they run on the goroutine of the upstream that changed.
//
// Collisions can only happen where upstreams are mounted without a prefix.
// The entry of the upstream that comes first in the config keeps the name;
// a later one is offered under its qualified name (name + separator + tool)
// and the collision is logged. Resources collide the same way, the later one
// is then offered with its upstream's name as URI prefix.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"

	"github.com/mcpgw/gateway/upstream"
)

// route says where a public entry lives upstream.
type route struct {
	m    *mount
	name string // the upstream's tool or prompt name, resource URI or URI template
}

type toolEntry struct {
	route
	tool *mcp.Tool // public form
	src  *mcp.Tool // the upstream's, as its catalog holds it: while it is the same, so is tool
	// headerParams: its input schema binds arguments to HTTP headers
	// (x-mcp-header, 2026-07-28), which the SDK's path checks.
	headerParams bool
}

type promptEntry struct {
	route
	prompt *mcp.Prompt
}

type resourceEntry struct {
	route
	resource *mcp.Resource
}

type templateEntry struct {
	route
	template *mcp.ResourceTemplate
	match    *uritemplate.Template // the public template, for routing reads
}

type catalog struct {
	server *mcp.Server
	sep    string
	max    int
	log    *slog.Logger
	h      handlers

	mu        sync.Mutex        // guards the tables and mounts; serializes rebuilds
	mounts    []*mount          // config order
	prefixes  map[string]*mount // non-empty prefix -> mount, for URI routing
	tools     map[string]toolEntry
	prompts   map[string]promptEntry
	resources map[string]resourceEntry
	templates map[string]templateEntry
	tmplOrder []string // public templates in config order, for routing reads

	// Tools and prompts whose upstream is down, so that calling one says
	// which upstream is unavailable rather than "unknown tool".
	retiredTools   map[string]*mount
	retiredPrompts map[string]*mount
}

// handlers are the forwarding functions installed with each entry.
type handlers struct {
	tool     func(r route) mcp.ToolHandler
	prompt   func(r route) mcp.PromptHandler
	resource mcp.ResourceHandler
}

func newCatalog(server *mcp.Server, mounts []*mount, sep string, max int, log *slog.Logger, h handlers) *catalog {
	return &catalog{
		server: server, mounts: mounts, prefixes: prefixesOf(mounts), sep: sep, max: max, log: log, h: h,
		tools:     map[string]toolEntry{},
		prompts:   map[string]promptEntry{},
		resources: map[string]resourceEntry{},
		templates: map[string]templateEntry{},

		retiredTools:   map[string]*mount{},
		retiredPrompts: map[string]*mount{},
	}
}

// prefixesOf maps each non-empty prefix to its mount.
func prefixesOf(mounts []*mount) map[string]*mount {
	out := map[string]*mount{}
	for _, m := range mounts {
		if m.prefix != "" {
			out[m.prefix] = m
		}
	}
	return out
}

// setMounts replaces the mounts (a reload) and rebuilds the catalog.
func (c *catalog) setMounts(mounts []*mount) {
	c.mu.Lock()
	c.mounts, c.prefixes = mounts, prefixesOf(mounts)
	c.mu.Unlock()
	c.rebuild()
}

// rebuild recomputes the public catalog and applies the difference.
func (c *catalog) rebuild() {
	c.mu.Lock()
	defer c.mu.Unlock()

	tools := map[string]toolEntry{}
	prompts := map[string]promptEntry{}
	resources := map[string]resourceEntry{}
	templates := map[string]templateEntry{}
	var tmplOrder []string

	for _, m := range c.mounts {
		cat := m.up.Catalog()
		for _, t := range cat.Tools {
			if !m.cfg.Tools.Allows(t.Name) {
				continue
			}
			pub, ok := claimName(c, tools, m, t.Name, "tool")
			if !ok {
				continue
			}
			r := route{m, t.Name}
			if old, ok := c.tools[pub]; ok && old.src == t && old.route == r {
				// Unchanged since the last rebuild: an upstream's catalog
				// keeps its tool objects until it is read again.
				tools[pub] = old
				continue
			}
			pt, err := publicTool(t, pub)
			if err != nil {
				c.log.LogAttrs(context.Background(), slog.LevelWarn, "skipping upstream tool",
					slog.String("upstream", m.name), slog.String("tool", t.Name), slog.Any("err", err))
				continue
			}
			schema, _ := pt.InputSchema.(json.RawMessage)
			tools[pub] = toolEntry{route: r, tool: pt, src: t, headerParams: bytes.Contains(schema, []byte("x-mcp-header"))}
		}
		for _, p := range cat.Prompts {
			if !m.cfg.Prompts.Allows(p.Name) {
				continue
			}
			pub, ok := claimName(c, prompts, m, p.Name, "prompt")
			if !ok {
				continue
			}
			pp := *p
			pp.Name = pub
			prompts[pub] = promptEntry{route{m, p.Name}, &pp}
		}
		for _, r := range cat.Resources {
			if !m.cfg.Resources.Allows(r.URI) {
				continue
			}
			pub, ok := claimURI(resources, m, r.URI, c.log, "resource")
			if !ok {
				continue
			}
			if u, err := url.Parse(pub); err != nil || u.Scheme == "" {
				c.log.LogAttrs(context.Background(), slog.LevelWarn, "skipping upstream resource with an invalid URI",
					slog.String("upstream", m.name), slog.String("uri", r.URI))
				continue
			}
			pr := *r
			pr.URI = pub
			resources[pub] = resourceEntry{route{m, r.URI}, &pr}
		}
		for _, t := range cat.Templates {
			if !m.cfg.Resources.Allows(t.URITemplate) {
				continue
			}
			pub, ok := claimURI(templates, m, t.URITemplate, c.log, "resource template")
			if !ok {
				continue
			}
			match, err := uritemplate.New(pub)
			if err != nil {
				c.log.LogAttrs(context.Background(), slog.LevelWarn, "skipping upstream resource template with an invalid URI template",
					slog.String("upstream", m.name), slog.String("template", t.URITemplate), slog.Any("err", err))
				continue
			}
			pt := *t
			pt.URITemplate = pub
			templates[pub] = templateEntry{route{m, t.URITemplate}, &pt, match}
			tmplOrder = append(tmplOrder, pub)
		}
	}

	// Apply the difference. Removals first, so a name that moved between
	// upstreams is replaced, not doubled.
	var gone []string
	for name := range c.tools {
		if _, ok := tools[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		c.server.RemoveTools(gone...)
	}
	for name, e := range tools {
		if old, ok := c.tools[name]; !ok || old.route != e.route || old.tool != e.tool && !reflect.DeepEqual(old.tool, e.tool) {
			c.server.AddTool(e.tool, c.h.tool(e.route))
		}
	}

	gone = gone[:0]
	for name := range c.prompts {
		if _, ok := prompts[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		c.server.RemovePrompts(gone...)
	}
	for name, e := range prompts {
		if old, ok := c.prompts[name]; !ok || old.route != e.route || !reflect.DeepEqual(old.prompt, e.prompt) {
			c.server.AddPrompt(e.prompt, c.h.prompt(e.route))
		}
	}

	gone = gone[:0]
	for uri := range c.resources {
		if _, ok := resources[uri]; !ok {
			gone = append(gone, uri)
		}
	}
	if len(gone) > 0 {
		c.server.RemoveResources(gone...)
	}
	for uri, e := range resources {
		if old, ok := c.resources[uri]; !ok || old.route != e.route || !reflect.DeepEqual(old.resource, e.resource) {
			c.server.AddResource(e.resource, c.h.resource)
		}
	}

	gone = gone[:0]
	for uri := range c.templates {
		if _, ok := templates[uri]; !ok {
			gone = append(gone, uri)
		}
	}
	if len(gone) > 0 {
		c.server.RemoveResourceTemplates(gone...)
	}
	for uri, e := range templates {
		if old, ok := c.templates[uri]; !ok || old.route != e.route || !reflect.DeepEqual(old.template, e.template) {
			c.server.AddResourceTemplate(e.template, c.h.resource)
		}
	}

	retire(c.retiredTools, c.tools, tools, func(e toolEntry) *mount { return e.m })
	retire(c.retiredPrompts, c.prompts, prompts, func(e promptEntry) *mount { return e.m })
	c.tools, c.prompts, c.resources, c.templates, c.tmplOrder = tools, prompts, resources, templates, tmplOrder
}

// retire updates the table of entries whose upstream is down: an entry that
// leaves because its upstream went down is remembered; an entry that is
// offered again, or whose upstream is up, is forgotten.
func retire[E any](retired map[string]*mount, old, cur map[string]E, mountOf func(E) *mount) {
	for name, e := range old {
		if _, ok := cur[name]; !ok {
			if m := mountOf(e); m.up.Status().State != upstream.StateUp {
				retired[name] = m
			}
		}
	}
	for name, m := range retired {
		if _, ok := cur[name]; ok || m.up.Status().State == upstream.StateUp {
			delete(retired, name)
		}
	}
}

// retired returns the mount of a tool (or prompt) that is not offered
// because its upstream is down.
func (c *catalog) retired(name string, prompt bool) *mount {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prompt {
		return c.retiredPrompts[name]
	}
	return c.retiredTools[name]
}

// claimName returns the public name for an upstream tool or prompt, resolving
// a collision with an entry that an earlier upstream already took.
func claimName[E any](c *catalog, taken map[string]E, m *mount, name, kind string) (string, bool) {
	has := func(k string) bool { _, ok := taken[k]; return ok }
	pub := publicName(m.prefix, c.sep, name, c.max)
	if !has(pub) {
		return pub, true
	}
	alt := publicName(m.name, c.sep, name, c.max)
	if alt == pub || has(alt) {
		alt = aliasName(m.name, c.sep, name, c.max)
	}
	if has(alt) {
		c.log.LogAttrs(context.Background(), slog.LevelWarn, "name collision; entry not offered",
			slog.String("kind", kind), slog.String("upstream", m.name), slog.String("name", name), slog.String("public", pub))
		return "", false
	}
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "name collision; offering entry under its qualified name",
		slog.String("kind", kind), slog.String("upstream", m.name), slog.String("name", name),
		slog.String("taken", pub), slog.String("public", alt))
	return alt, true
}

// claimURI is claimName for resource URIs and URI templates.
func claimURI[E any](taken map[string]E, m *mount, uri string, log *slog.Logger, kind string) (string, bool) {
	pub := publicURI(m.prefix, uri)
	if _, ok := taken[pub]; !ok {
		return pub, true
	}
	alt := publicURI(m.name, uri)
	if _, ok := taken[alt]; ok || alt == pub {
		log.LogAttrs(context.Background(), slog.LevelWarn, "URI collision; entry not offered",
			slog.String("kind", kind), slog.String("upstream", m.name), slog.String("uri", uri))
		return "", false
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "URI collision; offering entry under its qualified URI",
		slog.String("kind", kind), slog.String("upstream", m.name), slog.String("uri", uri), slog.String("public", alt))
	return alt, true
}

// publicTool returns the client-facing copy of an upstream tool. The SDK
// panics on a tool whose input schema is not an object; such a tool is
// refused here with an error instead.
func publicTool(t *mcp.Tool, pub string) (*mcp.Tool, error) {
	pt := *t
	pt.Name = pub
	if pt.InputSchema == nil {
		pt.InputSchema = json.RawMessage(`{"type":"object"}`)
		return &pt, nil
	}
	data, err := json.Marshal(pt.InputSchema)
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	var probe struct {
		Type any `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("input schema is not a JSON object")
	}
	if probe.Type != "object" {
		return nil, fmt.Errorf("input schema type is %v, want \"object\"", probe.Type)
	}
	// Keep the schema as the upstream sent it (the SDK decoded it into a
	// generic value; re-encoding that value is lossless for JSON).
	pt.InputSchema = json.RawMessage(data)
	if pt.OutputSchema != nil {
		out, err := json.Marshal(pt.OutputSchema)
		if err != nil {
			return nil, fmt.Errorf("output schema: %w", err)
		}
		pt.OutputSchema = json.RawMessage(out)
	}
	return &pt, nil
}

func (c *catalog) tool(name string) (toolEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tools[name]
	return e, ok
}

func (c *catalog) prompt(name string) (promptEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.prompts[name]
	return e, ok
}

// template returns the route of a public resource template, by its exact
// template text (completion references name templates that way).
func (c *catalog) template(uri string) (route, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.templates[uri]
	return e.route, ok
}

// resolveURI finds the upstream and its own URI for a public resource URI:
// a listed resource, else a URI under a mounted prefix, else a URI that a
// public template matches (for upstreams mounted without prefix).
func (c *catalog) resolveURI(public string) (route, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.resources[public]; ok {
		return e.route, true
	}
	if m, uri, ok := splitURI(public, c.prefixes); ok {
		return route{m, uri}, true
	}
	for _, pub := range c.tmplOrder {
		e := c.templates[pub]
		if e.m.prefix == "" && e.match.Regexp().MatchString(public) {
			return route{e.m, public}, true
		}
	}
	return route{}, false
}

// offers reports whether the SDK's server can route a read of uri itself:
// it is a listed resource or matches a public template.
func (c *catalog) offers(uri string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.resources[uri]; ok {
		return true
	}
	for _, e := range c.templates {
		if e.match.Regexp().MatchString(uri) {
			return true
		}
	}
	return false
}

// counts reports the number of public entries, for logs and health.
func (c *catalog) counts() (tools, prompts, resources, templates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tools), len(c.prompts), len(c.resources), len(c.templates)
}
