// Elicitation: a server's question to the user, asked in the terminal.
//
// Form mode: the user accepts, declines or cancels, then answers each
// field of the requested schema (a flat object of strings, numbers,
// integers, booleans, enums and arrays of enums). Answers are coerced to
// the field's type; an empty answer takes the field's default, or leaves an
// optional field out; a bad one is asked again. Fields are asked in
// alphabetical order, since the schema arrives as a JSON object and its
// order is not kept. URL mode: the URL is printed and the user confirms
// (accept) or not (decline); mcp-chat never opens it itself.
//
// End of input cancels the elicitation, and so does Ctrl-C, which also
// cancels the question being answered.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// formSchema is the subset of JSON Schema that elicitation forms use.
type formSchema struct {
	Properties map[string]*field `json:"properties"`
	Required   []string          `json:"required"`
}

// field is one property of a form.
type field struct {
	Type        string        `json:"type"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Format      string        `json:"format"`
	Enum        []any         `json:"enum"`
	EnumNames   []string      `json:"enumNames"`
	OneOf       []titledConst `json:"oneOf"`
	AnyOf       []titledConst `json:"anyOf"`
	Default     any           `json:"default"`
	Minimum     *float64      `json:"minimum"`
	Maximum     *float64      `json:"maximum"`
	Items       *field        `json:"items"`
}

// titledConst is one choice of a titled enum.
type titledConst struct {
	Const any    `json:"const"`
	Title string `json:"title"`
}

// choice is one allowed value of a field, and what to show for it.
type choice struct {
	value any
	label string
}

// choices returns the field's allowed values, if it is an enum.
func (f *field) choices() []choice {
	var cs []choice
	for i, v := range f.Enum {
		label := fmt.Sprint(v)
		if i < len(f.EnumNames) {
			label = f.EnumNames[i]
		}
		cs = append(cs, choice{v, label})
	}
	for _, tc := range append(slices.Clone(f.OneOf), f.AnyOf...) {
		label := tc.Title
		if label == "" {
			label = fmt.Sprint(tc.Const)
		}
		cs = append(cs, choice{tc.Const, label})
	}
	return cs
}

// elicit answers elicitation/create by asking the user.
func (h *host) elicit(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	ctx, cancel := h.inTurn(ctx)
	defer cancel()
	p := req.Params
	var (
		res *mcp.ElicitResult
		err error
	)
	if p.Mode == "url" {
		res, err = h.elicitURL(ctx, p)
	} else {
		res, err = h.elicitForm(ctx, p)
	}
	if err != nil {
		// End of input, or Ctrl-C: the user did not answer.
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			h.term.printf("  (cancelled)\n")
			return &mcp.ElicitResult{Action: "cancel"}, nil
		}
		return nil, err
	}
	h.term.printf("  ⇢ %s\n", res.Action)
	return res, nil
}

// elicitURL shows the URL and asks whether the user will open it.
func (h *host) elicitURL(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	h.term.printf("\n  The server asks you to open a URL: %s\n    %s\n", p.Message, p.URL)
	for {
		ans, err := h.term.readLine(ctx, "  Open it and continue? [y/N/c(ancel)]: ")
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "y", "yes":
			return &mcp.ElicitResult{Action: "accept"}, nil
		case "", "n", "no":
			return &mcp.ElicitResult{Action: "decline"}, nil
		case "c", "cancel":
			return &mcp.ElicitResult{Action: "cancel"}, nil
		}
	}
}

// elicitForm asks whether to answer, then each field of the form.
func (h *host) elicitForm(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	var schema formSchema
	if p.RequestedSchema != nil {
		data, err := json.Marshal(p.RequestedSchema)
		if err == nil {
			err = json.Unmarshal(data, &schema)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the requested schema: %w", err)
		}
	}
	h.term.printf("\n  The server asks: %s\n", p.Message)
ask:
	for {
		ans, err := h.term.readLine(ctx, "  Answer? [Y]es / [n]o (decline) / [c]ancel: ")
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "", "y", "yes":
			break ask
		case "n", "no", "decline":
			return &mcp.ElicitResult{Action: "decline"}, nil
		case "c", "cancel":
			return &mcp.ElicitResult{Action: "cancel"}, nil
		}
	}
	names := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	content := map[string]any{}
	for _, name := range names {
		v, ok, err := h.askField(ctx, name, schema.Properties[name], slices.Contains(schema.Required, name))
		if err != nil {
			return nil, err
		}
		if ok {
			content[name] = v
		}
	}
	return &mcp.ElicitResult{Action: "accept", Content: content}, nil
}

// askField asks for one field until the answer fits. ok is false when an
// optional field was left empty.
func (h *host) askField(ctx context.Context, name string, f *field, required bool) (v any, ok bool, err error) {
	if f == nil {
		f = &field{Type: "string"}
	}
	label := name
	if f.Title != "" {
		label = f.Title
	}
	if f.Description != "" {
		label += " — " + f.Description
	}
	choices := f.choices()
	if f.Type == "array" && f.Items != nil {
		choices = f.Items.choices()
	}
	if len(choices) > 0 {
		var b strings.Builder
		for i, c := range choices {
			fmt.Fprintf(&b, "  %d) %s", i+1, c.label)
		}
		h.term.printf("    choices for %s:%s\n", name, b.String())
	}
	hint := fieldHint(f, len(choices) > 0, required)
	for {
		line, err := h.term.readLine(ctx, fmt.Sprintf("  %s [%s]: ", label, hint))
		if err != nil {
			return nil, false, err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			if f.Default != nil {
				return f.Default, true, nil
			}
			if !required {
				return nil, false, nil
			}
			h.term.printf("    %s is required\n", name)
			continue
		}
		v, err := coerce(f, choices, line)
		if err != nil {
			h.term.printf("    %v\n", err)
			continue
		}
		return v, true, nil
	}
}

// fieldHint describes the expected answer.
func fieldHint(f *field, enum, required bool) string {
	var hint string
	switch {
	case f.Type == "array":
		hint = "comma-separated choices"
	case enum:
		hint = "choice number or value"
	case f.Type == "boolean":
		hint = "yes/no"
	case f.Type == "":
		hint = "string"
	default:
		hint = f.Type
		if f.Format != "" {
			hint += ", " + f.Format
		}
	}
	if f.Default != nil {
		hint += fmt.Sprintf(", default %v", f.Default)
	} else if !required {
		hint += ", optional"
	}
	return hint
}

// coerce converts an answer to the field's type.
func coerce(f *field, choices []choice, s string) (any, error) {
	if f.Type == "array" {
		var out []any
		for part := range strings.SplitSeq(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if len(choices) == 0 {
				out = append(out, part)
				continue
			}
			v, err := pick(choices, part)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	if len(choices) > 0 {
		return pick(choices, s)
	}
	switch f.Type {
	case "number":
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return n, checkRange(f, n)
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return n, checkRange(f, float64(n))
	case "boolean":
		switch strings.ToLower(s) {
		case "y", "yes", "true", "1", "on":
			return true, nil
		case "n", "no", "false", "0", "off":
			return false, nil
		}
		return nil, fmt.Errorf("answer yes or no")
	}
	return s, nil
}

// pick returns the choice s names, by number (from 1) or by value or
// label (ignoring case).
func pick(choices []choice, s string) (any, error) {
	if i, err := strconv.Atoi(s); err == nil && i >= 1 && i <= len(choices) {
		return choices[i-1].value, nil
	}
	for _, c := range choices {
		if strings.EqualFold(fmt.Sprint(c.value), s) || strings.EqualFold(c.label, s) {
			return c.value, nil
		}
	}
	return nil, fmt.Errorf("%q is not one of the choices", s)
}

// checkRange checks n against the field's minimum and maximum.
func checkRange(f *field, n float64) error {
	if f.Minimum != nil && n < *f.Minimum {
		return fmt.Errorf("must be at least %v", *f.Minimum)
	}
	if f.Maximum != nil && n > *f.Maximum {
		return fmt.Errorf("must be at most %v", *f.Maximum)
	}
	return nil
}
