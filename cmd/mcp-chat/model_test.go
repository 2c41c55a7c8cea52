package main

// A scripted OpenAI-compatible Chat Completions server (streamed and whole
// responses, tool calls, errors) that records what it received, and the
// tests of the model client against it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeModel is a Chat Completions API on httptest. script decides each
// response from the request and how many came before it.
type fakeModel struct {
	srv    *httptest.Server
	script func(n int, req *gotRequest) step

	mu   sync.Mutex // guards reqs
	reqs []*gotRequest
}

// gotRequest is a request the fake model received.
type gotRequest struct {
	Model     string       `json:"model"`
	Stream    bool         `json:"stream"`
	Messages  []gotMessage `json:"messages"`
	MaxTokens int64        `json:"max_tokens"`
	Tools     []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string         `json:"name"`
			Description string         `json:"description"`
			Parameters  map[string]any `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	Auth string `json:"-"` // the Authorization header
}

// toolNames lists the functions offered.
func (r *gotRequest) toolNames() []string {
	var names []string
	for _, t := range r.Tools {
		names = append(names, t.Function.Name)
	}
	return names
}

// gotMessage is one message of a received request.
type gotMessage struct {
	Role       string     `json:"role"`
	Content    any        `json:"content"`
	ToolCalls  []toolCall `json:"tool_calls"`
	ToolCallID string     `json:"tool_call_id"`
}

// text is the message's text content.
func (m gotMessage) text() string {
	s, _ := m.Content.(string)
	return s
}

// step is one scripted response.
type step struct {
	text   string
	calls  []toolCall
	status int    // if not zero, fail with this HTTP status
	body   string // the error body
	// streamError, if set, is sent as an error event inside the stream.
	streamError string
}

func answer(text string) step { return step{text: text} }

func calls(cs ...toolCall) step { return step{calls: cs} }

func call(id, name, args string) toolCall {
	return toolCall{ID: id, Type: "function", Function: functionCall{Name: name, Arguments: args}}
}

// scripted answers the requests with steps in order, failing t on any
// request beyond them.
func scripted(t *testing.T, steps ...step) func(int, *gotRequest) step {
	return func(n int, _ *gotRequest) step {
		if n < len(steps) {
			return steps[n]
		}
		t.Errorf("the model got request %d; the script has %d", n+1, len(steps))
		return step{status: 500, body: `{"error":{"message":"script exhausted"}}`}
	}
}

func newFakeModel(t *testing.T, script func(int, *gotRequest) step) *fakeModel {
	m := &fakeModel{script: script}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// url is the base URL to pass as --base-url.
func (m *fakeModel) url() string { return m.srv.URL + "/v1" }

// requests returns what the model received, in order.
func (m *fakeModel) requests() []*gotRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*gotRequest(nil), m.reqs...)
}

func (m *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	var req gotRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	req.Auth = r.Header.Get("Authorization")
	m.mu.Lock()
	n := len(m.reqs)
	m.reqs = append(m.reqs, &req)
	m.mu.Unlock()

	s := m.script(n, &req)
	if s.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		fmt.Fprint(w, s.body)
		return
	}
	finish := "stop"
	if len(s.calls) > 0 {
		finish = "tool_calls"
	}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": s.text}
		if s.text == "" {
			msg["content"] = nil
		}
		if len(s.calls) > 0 {
			msg["tool_calls"] = s.calls
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "model": "fake-" + req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		})
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	send := func(delta map[string]any, finish any) {
		data, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-" + req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(w, "data: %s\n\n", data)
		w.(http.Flusher).Flush()
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil)
	fmt.Fprint(w, ": keep-alive comment\n\n")
	// The text in three pieces.
	for _, piece := range thirds(s.text) {
		if piece != "" {
			send(map[string]any{"content": piece}, nil)
		}
	}
	if s.streamError != "" {
		fmt.Fprintf(w, "data: {\"error\":{\"message\":%q}}\n\n", s.streamError)
		return
	}
	// Each call's head, then the halves of the arguments interleaved
	// across calls, as a parallel-calling model streams them.
	for i, c := range s.calls {
		send(map[string]any{"tool_calls": []any{map[string]any{
			"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Function.Name, "arguments": ""},
		}}}, nil)
	}
	for half := range 2 {
		for i, c := range s.calls {
			a := c.Function.Arguments
			part := a[:len(a)/2]
			if half == 1 {
				part = a[len(a)/2:]
			}
			send(map[string]any{"tool_calls": []any{map[string]any{
				"index": i, "function": map[string]any{"arguments": part},
			}}}, nil)
		}
	}
	send(map[string]any{}, finish)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// thirds splits s into three pieces at character boundaries.
func thirds(s string) []string {
	r := []rune(s)
	a, b := len(r)/3, 2*len(r)/3
	return []string{string(r[:a]), string(r[a:b]), string(r[b:])}
}

// The client assembles streamed text and interleaved tool call deltas, and
// reads whole responses the same.
func TestCompleteStreamedAndWhole(t *testing.T) {
	want := &reply{
		Content: "Let me compute. ✓",
		ToolCalls: []toolCall{
			call("call_a", "demo__multiply", `{"a":6,"b":7}`),
			call("call_b", "demo__save_memory", `{"text":"héllo"}`),
		},
		FinishReason: "tool_calls",
		Model:        "fake-m",
	}
	m := newFakeModel(t, func(int, *gotRequest) step {
		return step{text: want.Content, calls: want.ToolCalls}
	})
	c := &llmClient{BaseURL: m.url(), APIKey: "sk-test", Model: "m"}
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			var got strings.Builder
			rep, err := c.complete(context.Background(), chatRequest{Stream: stream, Messages: []message{{Role: "user", Content: "hi"}}}, func(s string) { got.WriteString(s) })
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rep) != fmt.Sprint(want) {
				t.Errorf("complete() = %+v, want %+v", rep, want)
			}
			if got.String() != want.Content {
				t.Errorf("streamed text %q, want %q", got.String(), want.Content)
			}
		})
	}
	for _, r := range m.requests() {
		if r.Auth != "Bearer sk-test" || r.Model != "m" {
			t.Errorf("request had Authorization %q and model %q, want the key and m", r.Auth, r.Model)
		}
	}
}

// API errors carry the HTTP status and the API's own message, whatever
// shape the error body has.
func TestCompleteErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    step
		want string
	}{
		{"openai 429", step{status: 429, body: `{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","code":"rate_limit_exceeded"}}`},
			"model API: 429 Too Many Requests: Rate limit reached for gpt-4o-mini"},
		{"string error 500", step{status: 500, body: `{"error":"model 'llama9' not found"}`},
			"model API: 500 Internal Server Error: model 'llama9' not found"},
		{"plain text 502", step{status: 502, body: "bad gateway\n"},
			"model API: 502 Bad Gateway: bad gateway"},
		{"error in stream", step{text: "partial", streamError: "overloaded"},
			"model API: error in the response stream: overloaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeModel(t, func(int, *gotRequest) step { return tc.s })
			c := &llmClient{BaseURL: m.url(), Model: "m"}
			_, err := c.complete(context.Background(), chatRequest{Stream: true}, nil)
			var apiErr *apiError
			if !errors.As(err, &apiErr) || err.Error() != tc.want {
				t.Errorf("complete() error = %v, want %q", err, tc.want)
			}
		})
	}
}

// Streams from servers that send every call whole at index 0, or without
// an index, still give one call each.
func TestReadStreamIndexless(t *testing.T) {
	for _, tc := range []struct{ name, stream string }{
		{"same index", `data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c2","function":{"name":"g","arguments":"{\"x\":1}"}}]}}]}

data: [DONE]
`},
		{"no index", `data: {"choices":[{"delta":{"tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"id":"c2","function":{"name":"g","arguments":"{\"x\":1}"}}]}}]}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := readStream(strings.NewReader(tc.stream), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(rep.ToolCalls)
			want := fmt.Sprint([]toolCall{call("c1", "f", "{}"), call("c2", "g", `{"x":1}`)})
			if got != want {
				t.Errorf("readStream() calls = %s, want %s", got, want)
			}
		})
	}
}

// FuzzReadStream: no stream, however malformed, panics the reader.
func FuzzReadStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":3,\"id\":\"x\",\"function\":{\"name\":\"n\",\"arguments\":\"{\"}}]}}]}\n\n")
	f.Add(": comment\nevent: x\ndata: {}\ndata: {}\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		readStream(strings.NewReader(s), func(string) {})
	})
}
