// The weather half of the demo follows the classic MCP quickstart, but answers
// from bundled sample data instead of the National Weather Service API, so the
// demo needs no network and tests see the same alerts every run.

package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sampleAlerts is the bundled data set. It is package-level only because
// go:embed requires it; nothing writes to it.
//
//go:embed data/alerts.json
var sampleAlerts []byte

const (
	alertsSampleURI   = "demo://alerts/sample"
	alertsURIPrefix   = "demo://alerts/"
	alertsTemplateURI = alertsURIPrefix + "{state}"
)

// An alert is one active weather alert, shaped like the fields the quickstart
// picks out of an NWS alert feature.
type alert struct {
	Event        string `json:"event"`
	Area         string `json:"area"`
	Severity     string `json:"severity"`
	Description  string `json:"description"`
	Instructions string `json:"instructions"`
}

// alertBook holds the sample alerts by upper-case state code. It is read-only
// after newAlertBook, so it is safe for concurrent use without a lock.
type alertBook struct {
	raw    []byte             // the data as bundled, served verbatim as the sample resource
	states map[string][]alert // state code -> its alerts, never empty
	codes  []string           // sorted keys of states, for completion
}

// newAlertBook parses data strictly, so a typo in the bundled file fails
// startup (and the tests) rather than silently hiding a state.
func newAlertBook(data []byte) (*alertBook, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var states map[string][]alert
	if err := dec.Decode(&states); err != nil {
		return nil, fmt.Errorf("decoding alerts: %w", err)
	}
	b := &alertBook{raw: data, states: make(map[string][]alert, len(states))}
	for code, alerts := range states {
		norm, err := normalizeState(code)
		if err != nil || norm != code {
			return nil, fmt.Errorf("alerts key %q: want an upper-case two-letter state code", code)
		}
		if len(alerts) == 0 {
			return nil, fmt.Errorf("alerts key %q: no alerts; leave the state out instead", code)
		}
		b.states[code] = alerts
		b.codes = append(b.codes, code)
	}
	slices.Sort(b.codes)
	return b, nil
}

// normalizeState accepts a two-letter state code in any case, with
// surrounding space, and returns it in upper case.
// The letters are checked before upper-casing: strings.ToUpper maps some
// non-ASCII letters (ſ, ı) to ASCII ones.
func normalizeState(s string) (string, error) {
	code := strings.TrimSpace(s)
	if len(code) != 2 || !isASCIILetter(code[0]) || !isASCIILetter(code[1]) {
		return "", fmt.Errorf("state must be a two-letter US state code such as \"CA\", got %q", s)
	}
	return strings.ToUpper(code), nil
}

func isASCIILetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

type getAlertsInput struct {
	State string `json:"state" jsonschema:"two-letter US state code, e.g. CA or ny (case-insensitive)"`
}

// getAlerts is the get_alerts tool. An invalid code is a tool error (the
// model should retry with a better argument), not a protocol error.
func (b *alertBook) getAlerts(_ context.Context, _ *mcp.CallToolRequest, in getAlertsInput) (*mcp.CallToolResult, any, error) {
	text, err := b.alertsText(in.State)
	if err != nil {
		return nil, nil, err
	}
	return textResult(text), nil, nil
}

// alertsText renders a state's alerts, or says there are none.
func (b *alertBook) alertsText(state string) (string, error) {
	code, err := normalizeState(state)
	if err != nil {
		return "", err
	}
	alerts := b.states[code]
	if len(alerts) == 0 {
		return fmt.Sprintf("No active alerts for %s.", code), nil
	}
	parts := make([]string, len(alerts))
	for i, a := range alerts {
		parts[i] = formatAlert(a)
	}
	return strings.Join(parts, "\n---\n"), nil
}

// formatAlert renders an alert the way the quickstart's format_alert does.
func formatAlert(a alert) string {
	return fmt.Sprintf("Event: %s\nArea: %s\nSeverity: %s\nDescription: %s\nInstructions: %s",
		a.Event, a.Area, a.Severity, a.Description, a.Instructions)
}

// readSample serves the whole bundled file as demo://alerts/sample.
func (b *alertBook) readSample(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI:      req.Params.URI,
		MIMEType: "application/json",
		Text:     string(b.raw),
	}}}, nil
}

// stateAlerts is the JSON body of demo://alerts/{state}.
type stateAlerts struct {
	State  string  `json:"state"`
	Alerts []alert `json:"alerts"`
}

// readState serves demo://alerts/{state}. Unlike get_alerts, a state without
// sample alerts is "not found": a resource either exists or it does not.
func (b *alertBook) readState(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	rest, ok := strings.CutPrefix(uri, alertsURIPrefix)
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	code, err := normalizeState(rest)
	if err != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	alerts, ok := b.states[code]
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	body, err := json.Marshal(stateAlerts{State: code, Alerts: alerts})
	if err != nil {
		return nil, fmt.Errorf("encoding alerts for %s: %w", code, err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI:      uri,
		MIMEType: "application/json",
		Text:     string(body),
	}}}, nil
}

// completeState returns the sample state codes that start with prefix,
// ignoring case, in sorted order. It never returns nil, because "values" is
// a required array on the wire.
func (b *alertBook) completeState(prefix string) []string {
	prefix = strings.ToUpper(strings.TrimSpace(prefix))
	out := []string{}
	for _, code := range b.codes {
		if strings.HasPrefix(code, prefix) {
			out = append(out, code)
		}
	}
	return out
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
