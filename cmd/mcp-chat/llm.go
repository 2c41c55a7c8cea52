// The model side: a client for any OpenAI-compatible Chat Completions API
// (OpenAI, Ollama, llama.cpp, vLLM, LM Studio, ...), written against the
// wire format with the standard library only.
//
// A streamed response is a text/event-stream of "data: {chunk}" events
// ended by "data: [DONE]". Text arrives as content deltas; tool calls arrive
// as deltas too, each naming the index of the call it extends: the first
// delta of a call carries its id and function name, later ones carry pieces
// of its JSON arguments. Some servers omit the index or send every call
// whole at index 0, so a delta whose id differs from the call at its index
// starts a new call.

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// chatRequest is a Chat Completions request body.
type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []message `json:"messages"`
	Tools       []toolDef `json:"tools,omitempty"`
	Stream      bool      `json:"stream,omitempty"`
	MaxTokens   int64     `json:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
	Stop        []string  `json:"stop,omitempty"`
}

// message is one message of a conversation.
type message struct {
	Role string // system, user, assistant or tool
	// Content is the text. An assistant message that only calls tools has
	// none, and is sent with "content": null.
	Content string
	// Parts, if non-nil, is sent as the content instead of Content: text,
	// image and audio parts of a multimodal message.
	Parts      []contentPart
	ToolCalls  []toolCall // of an assistant message
	ToolCallID string     // of a tool message: the call it answers
}

// MarshalJSON writes m in the wire format, where content is a string, an
// array of parts, or null.
func (m message) MarshalJSON() ([]byte, error) {
	var content any
	switch {
	case m.Parts != nil:
		content = m.Parts
	case m.Content != "" || len(m.ToolCalls) == 0:
		content = m.Content
	}
	return json.Marshal(struct {
		Role       string     `json:"role"`
		Content    any        `json:"content"`
		ToolCalls  []toolCall `json:"tool_calls,omitempty"`
		ToolCallID string     `json:"tool_call_id,omitempty"`
	}{m.Role, content, m.ToolCalls, m.ToolCallID})
}

// contentPart is one part of a multimodal message.
type contentPart struct {
	Type       string      `json:"type"` // text, image_url or input_audio
	Text       string      `json:"text,omitempty"`
	ImageURL   *imageURL   `json:"image_url,omitempty"`
	InputAudio *inputAudio `json:"input_audio,omitempty"`
}

type imageURL struct {
	URL string `json:"url"` // here always a data: URL
}

type inputAudio struct {
	Data   string `json:"data"`   // base64
	Format string `json:"format"` // wav or mp3
}

// toolCall is a function call requested by the model.
type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"` // function
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON text, as the model wrote it
}

// toolDef offers one function to the model.
type toolDef struct {
	Type     string      `json:"type"` // function
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Parameters  any    `json:"parameters"` // a JSON Schema object
}

// reply is the model's answer to one request.
type reply struct {
	Content      string
	ToolCalls    []toolCall
	FinishReason string // stop, length, tool_calls, ...
	Model        string // as reported by the API
}

// apiError is a failed request to the model API: its HTTP status and the
// API's own message.
type apiError struct {
	Status  string // "429 Too Many Requests"; "" for an error inside a stream
	Message string
}

// Error says "model API: <status>: <message>".
func (e *apiError) Error() string {
	if e.Status == "" {
		return "model API: error in the response stream: " + e.Message
	}
	if e.Message == "" {
		return "model API: " + e.Status
	}
	return "model API: " + e.Status + ": " + e.Message
}

// llmClient calls a Chat Completions API. It is safe for concurrent use:
// the chat and the server's sampling requests share it.
type llmClient struct {
	// BaseURL ends before /chat/completions, e.g. https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as a bearer token; if empty, no Authorization header
	// is sent (local servers need none).
	APIKey string
	Model  string
	// HTTP is the client for API requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// complete sends req (Model filled in if empty). If req.Stream is set, text
// is passed to onText as it arrives; otherwise onText, if not nil, gets the
// whole text once. Cancelling ctx abandons the request.
func (c *llmClient) complete(ctx context.Context, req chatRequest, onText func(string)) (*reply, error) {
	if req.Model == "" {
		req.Model = c.Model
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the model request: %w", err)
	}
	u := strings.TrimSuffix(c.BaseURL, "/") + "/chat/completions"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("model API: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("model API unreachable at %s: %w", c.BaseURL, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &apiError{Status: resp.Status, Message: errorMessage(data)}
	}
	// Some servers answer a streamed request with one JSON body; accept it.
	var r *reply
	if req.Stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		r, err = readStream(resp.Body, onText)
	} else {
		r, err = readCompletion(resp.Body)
		if err == nil && onText != nil && r.Content != "" {
			onText(r.Content)
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r, err
}

// errorMessage extracts the message of an API error body: OpenAI's
// {"error":{"message":...}}, the {"error":"..."} of several local servers,
// or the body's text.
func errorMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		var obj struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &obj) == nil && obj.Message != "":
			return obj.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case v.Message != "":
			return v.Message
		case v.Detail != nil:
			return fmt.Sprint(v.Detail)
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// completion is a non-streamed response body.
type completion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// readCompletion reads a whole (not streamed) response.
func readCompletion(r io.Reader) (*reply, error) {
	var c completion
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return nil, fmt.Errorf("model API: reading the response: %w", err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return nil, &apiError{Message: errorMessage([]byte(`{"error":` + string(c.Error) + `}`))}
	}
	if len(c.Choices) == 0 {
		return nil, errors.New("model API: the response has no choices")
	}
	ch := c.Choices[0]
	rep := &reply{Model: c.Model, FinishReason: ch.FinishReason, ToolCalls: ch.Message.ToolCalls}
	if ch.Message.Content != nil {
		rep.Content = *ch.Message.Content
	}
	for i := range rep.ToolCalls {
		if rep.ToolCalls[i].Type == "" {
			rep.ToolCalls[i].Type = "function"
		}
	}
	return rep, nil
}

// chunk is one event of a streamed response.
type chunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// maxEventSize bounds one server-sent event of a streamed response.
const maxEventSize = 8 << 20

// readStream reads a streamed response to its end ([DONE] or EOF),
// passing text deltas to onText.
func readStream(r io.Reader, onText func(string)) (*reply, error) {
	var (
		rep     reply
		text    strings.Builder
		calls   []indexedCall // in order of appearance
		byIndex = map[int]*toolCall{}
	)
	apply := func(data []byte) error {
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("model API: bad stream event %.200q: %w", data, err)
		}
		if len(c.Error) > 0 && string(c.Error) != "null" {
			return &apiError{Message: errorMessage([]byte(`{"error":` + string(c.Error) + `}`))}
		}
		if c.Model != "" {
			rep.Model = c.Model
		}
		for _, ch := range c.Choices {
			if d := ch.Delta.Content; d != nil && *d != "" {
				text.WriteString(*d)
				if onText != nil {
					onText(*d)
				}
			}
			for _, tc := range ch.Delta.ToolCalls {
				idx := len(calls) // no index: a new call, or
				switch {
				case tc.Index != nil:
					idx = *tc.Index
				case tc.ID == "" && len(calls) > 0: // the last one continued
					idx = calls[len(calls)-1].index
				}
				call := byIndex[idx]
				if call == nil || (tc.ID != "" && call.ID != "" && tc.ID != call.ID) {
					call = &toolCall{Type: "function"}
					byIndex[idx] = call
					calls = append(calls, indexedCall{idx, call})
				}
				if tc.ID != "" {
					call.ID = tc.ID
				}
				if n := tc.Function.Name; n != "" && n != call.Function.Name {
					call.Function.Name += n
				}
				call.Function.Arguments += tc.Function.Arguments
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				rep.FinishReason = *ch.FinishReason
			}
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventSize)
	var data []byte
	done := false
	for !done && sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of an event
			if len(data) == 0 {
				continue
			}
			if string(bytes.TrimSpace(data)) == "[DONE]" {
				done = true
				continue
			}
			if err := apply(data); err != nil {
				return nil, err
			}
			data = data[:0]
		case line[0] == ':': // a comment (keep-alive)
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			if string(field) == "data" {
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("model API: reading the stream: %w", err)
	}
	// A stream cut without a blank line after its last event.
	if !done && len(bytes.TrimSpace(data)) > 0 && string(bytes.TrimSpace(data)) != "[DONE]" {
		if err := apply(data); err != nil {
			return nil, err
		}
	}
	rep.Content = text.String()
	// Calls come in index order, however their deltas interleaved.
	slices.SortStableFunc(calls, func(a, b indexedCall) int { return cmp.Compare(a.index, b.index) })
	for _, c := range calls {
		rep.ToolCalls = append(rep.ToolCalls, *c.call)
	}
	return &rep, nil
}

// indexedCall is a tool call being assembled from deltas, and its index.
type indexedCall struct {
	index int
	call  *toolCall
}
