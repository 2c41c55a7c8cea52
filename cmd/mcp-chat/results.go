// Turning MCP tool results into the text of a tool message: what the model
// sees of a call.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxToolResult bounds the text of one tool result given to the model, so
// that one large result cannot exhaust its context window.
const maxToolResult = 100_000

// resultText renders res for the model: its text content, a placeholder
// for each non-text item, and its structured content as JSON (unless a
// text item already holds exactly that JSON, as the spec recommends). A
// result with isError set is said to have failed, so the model can react
// instead of the program stopping.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, contentText(c))
	}
	if sc := res.StructuredContent; sc != nil {
		if data, err := json.Marshal(sc); err == nil && !containsJSON(parts, data) {
			parts = append(parts, string(data))
		}
	}
	text := strings.Join(parts, "\n")
	if res.IsError {
		if text == "" {
			text = "(no details)"
		}
		text = "The tool call failed: " + text
	}
	if text == "" {
		text = "(the tool returned no content)"
	}
	return truncate(text, maxToolResult)
}

// contentText renders one content item.
func contentText(c mcp.Content) string {
	switch c := c.(type) {
	case *mcp.TextContent:
		return c.Text
	case *mcp.ImageContent:
		return fmt.Sprintf("[image: %s, %d bytes]", c.MIMEType, len(c.Data))
	case *mcp.AudioContent:
		return fmt.Sprintf("[audio: %s, %d bytes]", c.MIMEType, len(c.Data))
	case *mcp.ResourceLink:
		s := "[resource link: " + c.URI
		if c.Name != "" {
			s += " (" + c.Name + ")"
		}
		if c.Description != "" {
			s += ": " + c.Description
		}
		return s + "]"
	case *mcp.EmbeddedResource:
		r := c.Resource
		if r == nil {
			return "[embedded resource]"
		}
		if r.Text != "" {
			return fmt.Sprintf("[resource %s]\n%s", r.URI, r.Text)
		}
		return fmt.Sprintf("[resource %s: %s, %d bytes]", r.URI, r.MIMEType, len(r.Blob))
	default:
		data, _ := json.Marshal(c)
		return string(data)
	}
}

// containsJSON reports whether one of parts is the JSON value data.
func containsJSON(parts []string, data []byte) bool {
	canonical := func(b []byte) ([]byte, bool) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return nil, false
		}
		c, err := json.Marshal(v) // maps marshal with sorted keys
		return c, err == nil
	}
	want, ok := canonical(data)
	if !ok {
		return false
	}
	for _, p := range parts {
		if got, ok := canonical([]byte(p)); ok && bytes.Equal(got, want) {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n bytes, at a character boundary, marking the
// cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(truncated)"
}

// oneLine shortens s for a diagnostic line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
