// Offering MCP tools to the model as functions. OpenAI requires function
// names to match ^[a-zA-Z0-9_-]{1,64}$; MCP tool names may be longer and
// hold dots, slashes and more. A name that fits is offered as it is (the
// gateway's namespaced names always fit); any other gets a stable alias,
// and calls map back through the catalog exactly.

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxFunctionName is OpenAI's limit on function names.
const maxFunctionName = 64

var functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// catalog is the server's tools as offered to the model.
type catalog struct {
	defs   []toolDef
	byFunc map[string]*mcp.Tool // function name -> tool
}

// newCatalog builds the function definitions for tools, in their order.
func newCatalog(tools []*mcp.Tool) *catalog {
	c := &catalog{byFunc: map[string]*mcp.Tool{}}
	funcOf := map[*mcp.Tool]string{}
	taken := func(name string) bool { _, ok := c.byFunc[name]; return ok }
	assign := func(name string, t *mcp.Tool) { c.byFunc[name], funcOf[t] = t, name }
	// Names that fit are claimed first, so an alias never displaces a
	// tool's own name.
	for _, t := range tools {
		if functionNameRE.MatchString(t.Name) && !taken(t.Name) {
			assign(t.Name, t)
		}
	}
	for _, t := range tools {
		if _, ok := funcOf[t]; !ok {
			assign(functionName(t.Name, taken), t)
		}
	}
	for _, t := range tools {
		name := funcOf[t]
		desc := t.Description
		if desc == "" {
			desc = t.Title
		}
		if name != t.Name {
			desc = strings.TrimSpace(desc + " (MCP tool " + strconv.Quote(t.Name) + ")")
		}
		c.defs = append(c.defs, toolDef{Type: "function", Function: functionDef{
			Name:        name,
			Description: desc,
			Parameters:  parameters(t.InputSchema),
		}})
	}
	return c
}

// tool returns the tool offered as function name, or nil.
func (c *catalog) tool(name string) *mcp.Tool {
	if c == nil {
		return nil
	}
	return c.byFunc[name]
}

// functionName returns an alias for the MCP tool name that satisfies
// OpenAI's rule and is not taken: the name with every other character
// replaced by "_", cut to fit, plus "_" and six hex digits of a hash of the
// full name (and a counter in the unlikely case that is taken too).
func functionName(tool string, taken func(string) bool) string {
	clean := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, tool)
	sum := sha256.Sum256([]byte(tool))
	suffix := "_" + hex.EncodeToString(sum[:3])
	for n := 0; ; n++ {
		s := suffix
		if n > 0 {
			s += strconv.Itoa(n)
		}
		name := clean
		if len(name) > maxFunctionName-len(s) {
			name = name[:maxFunctionName-len(s)]
		}
		name += s
		if !taken(name) {
			return name
		}
	}
}

// parameters returns the JSON Schema to offer for an input schema: the
// schema itself (MCP input schemas are object schemas), or an empty object
// schema when there is none.
func parameters(schema any) any {
	m, ok := schema.(map[string]any)
	if !ok || len(m) == 0 {
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	return m
}
