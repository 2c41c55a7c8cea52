package main

// Unit tests of the pure parts: function names, tool result text, answer
// coercion for elicitation, and the conversion of sampling requests.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestCatalogNames(t *testing.T) {
	long := strings.Repeat("x", 80)
	tools := []*mcp.Tool{
		{Name: "demo__multiply"},
		{Name: "fs.read/file"},
		{Name: long},
		{Name: "fs_read_file"},
		{Name: "héllo"},
	}
	c := newCatalog(tools)
	var got []string
	for _, d := range c.defs {
		got = append(got, d.Function.Name)
	}
	want := []string{
		"demo__multiply",
		"fs_read_file_" + hash6("fs.read/file"), // fs_read_file itself is taken
		strings.Repeat("x", 57) + "_" + hash6(long),
		"fs_read_file",
		"h_llo_" + hash6("héllo"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("function names = %q, want %q", got, want)
	}
	for i, name := range got {
		if !functionNameRE.MatchString(name) {
			t.Errorf("function name %q does not match OpenAI's pattern", name)
		}
		if c.tool(name) != tools[i] {
			t.Errorf("tool(%q) = %v, want %q", name, c.tool(name), tools[i].Name)
		}
	}
	if d := c.defs[1].Function.Description; !strings.Contains(d, `(MCP tool "fs.read/file")`) {
		t.Errorf("an aliased tool's description %q does not name the tool", d)
	}
	if p := c.defs[0].Function.Parameters.(map[string]any); p["type"] != "object" {
		t.Errorf("parameters of a tool without a schema = %v, want an object schema", p)
	}
}

// hash6 is the first six hex digits of the SHA-256 of s.
func hash6(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:6]
}

// FuzzFunctionName: every alias fits OpenAI's pattern and maps back.
func FuzzFunctionName(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", strings.Repeat("é", 70), "x y/z"} {
		f.Add(s, "other")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		tools := []*mcp.Tool{{Name: a}, {Name: b}, {Name: a + "!"}}
		c := newCatalog(tools)
		for i, d := range c.defs {
			if !functionNameRE.MatchString(d.Function.Name) {
				t.Fatalf("function name %q for %q does not match", d.Function.Name, tools[i].Name)
			}
			if c.tool(d.Function.Name) != tools[i] {
				t.Fatalf("function %q does not map back to tool %d", d.Function.Name, i)
			}
		}
	})
}

func TestResultText(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  *mcp.CallToolResult
		want string
	}{
		{"text and structured", &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "42"}}, StructuredContent: map[string]any{"result": 42}},
			"42\n{\"result\":42}"},
		{"structured already as text", &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: `{ "b": 1, "a": [2] }`}}, StructuredContent: map[string]any{"a": []any{2}, "b": 1}},
			`{ "b": 1, "a": [2] }`},
		{"error", &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no such file"}}},
			"The tool call failed: no such file"},
		{"empty error", &mcp.CallToolResult{IsError: true}, "The tool call failed: (no details)"},
		{"nothing", &mcp.CallToolResult{}, "(the tool returned no content)"},
		{"other content", &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.ImageContent{MIMEType: "image/png", Data: []byte("abc")},
			&mcp.ResourceLink{URI: "demo://x", Name: "x"},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "demo://y", Text: "why"}},
		}}, "[image: image/png, 3 bytes]\n[resource link: demo://x (x)]\n[resource demo://y]\nwhy"},
	} {
		if got := resultText(tc.res); got != tc.want {
			t.Errorf("%s: resultText() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := resultText(&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("é", maxToolResult)}}}); len(got) > maxToolResult+20 || !strings.HasSuffix(got, "…(truncated)") {
		t.Errorf("a huge result is %d bytes, ending %q", len(got), got[len(got)-20:])
	}
}

func TestCoerce(t *testing.T) {
	min0 := 0.0
	colors := &field{Type: "string", Enum: []any{"red", "green"}, EnumNames: []string{"Red", "Green"}}
	titled := &field{Type: "string", OneOf: []titledConst{{Const: "#f00", Title: "Red"}, {Const: "#0f0", Title: "Green"}}}
	for _, tc := range []struct {
		f       *field
		in      string
		want    any
		wantErr string
	}{
		{&field{Type: "string"}, "hi there", "hi there", ""},
		{&field{Type: "integer", Minimum: &min0}, "41", int64(41), ""},
		{&field{Type: "integer", Minimum: &min0}, "-1", nil, "must be at least 0"},
		{&field{Type: "integer"}, "4.5", nil, `"4.5" is not a whole number`},
		{&field{Type: "number"}, "4.5", 4.5, ""},
		{&field{Type: "number"}, "four", nil, `"four" is not a number`},
		{&field{Type: "boolean"}, "Yes", true, ""},
		{&field{Type: "boolean"}, "off", false, ""},
		{&field{Type: "boolean"}, "maybe", nil, "answer yes or no"},
		{colors, "2", "green", ""},
		{colors, "RED", "red", ""},
		{colors, "blue", nil, `"blue" is not one of the choices`},
		{titled, "green", "#0f0", ""},
		{&field{Type: "array", Items: colors}, "1, green", []any{"red", "green"}, ""},
		{&field{Type: "array", Items: colors}, "1, 7", nil, `"7" is not one of the choices`},
	} {
		choices := tc.f.choices()
		if tc.f.Type == "array" {
			choices = tc.f.Items.choices()
		}
		got, err := coerce(tc.f, choices, tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("coerce(%s, %q) error = %v, want %q", tc.f.Type, tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
			t.Errorf("coerce(%s, %q) = %#v, %v; want %#v", tc.f.Type, tc.in, got, err, tc.want)
		}
	}
}

func TestSamplingRequest(t *testing.T) {
	req, err := samplingRequest(&mcp.CreateMessageParams{
		SystemPrompt: "Be brief.",
		MaxTokens:    100,
		Temperature:  0.5,
		Messages: []*mcp.SamplingMessage{
			{Role: "user", Content: &mcp.TextContent{Text: "What is this?"}},
			{Role: "user", Content: &mcp.ImageContent{MIMEType: "image/png", Data: []byte{1, 2, 3}}},
			{Role: "assistant", Content: &mcp.TextContent{Text: "A picture."}},
			{Role: "user", Content: &mcp.AudioContent{MIMEType: "audio/mpeg", Data: []byte{4}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(req)
	want := `{"model":"","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is this?"},` +
		`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AQID"}}]},` +
		`{"role":"assistant","content":"A picture."},{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"BA==","format":"mp3"}}]}],` +
		`"max_tokens":100,"temperature":0.5}`
	if string(data) != want {
		t.Errorf("samplingRequest() =\n%s\nwant\n%s", data, want)
	}
	if _, err := samplingRequest(&mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{{Role: "system", Content: &mcp.TextContent{}}}}); err == nil {
		t.Error("samplingRequest() with role system succeeded, want an error")
	}
}
