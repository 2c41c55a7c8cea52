package main

// End to end through the real gateway: mcp-chat (built, and in-process)
// against a scripted model, the demo server and the test server.

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tool message that answers call id in req, or fails t.
func toolMessage(t *testing.T, req *gotRequest, id string) string {
	t.Helper()
	for _, m := range req.Messages {
		if m.Role == "tool" && m.ToolCallID == id {
			return m.text()
		}
	}
	t.Fatalf("the model never got the result of call %s; messages: %+v", id, req.Messages)
	return ""
}

// A question that needs multiply: the model gets the tools, calls
// demo__multiply, gets "42" back, and its answer is all that stdout holds.
// Once as the built binary with --once (streamed), once in-process without
// streaming.
func TestMultiply(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	for _, mode := range []string{"binary, streamed", "in-process, --no-stream"} {
		t.Run(mode, func(t *testing.T) {
			m := newFakeModel(t, scripted(t,
				calls(call("call_1", "demo__multiply", `{"a":6,"b":7}`)),
				answer("6 times 7 is 42."),
			))
			vars := map[string]string{"OPENAI_API_KEY": "sk-test"}
			args := []string{"--url", gw.mcpURL(), "--base-url", m.url(), "--model", "test-model", "--once", "What is 6 times 7?"}
			var code int
			var stdout, stderr string
			if strings.HasPrefix(mode, "binary") {
				code, stdout, stderr = runBinary(t, vars, args...)
			} else {
				code, stdout, stderr = runChat(t, vars, "", append(args, "--no-stream")...)
			}
			if code != 0 || stdout != "6 times 7 is 42.\n" {
				t.Fatalf("mcp-chat = %d, stdout %q, want 0 and the answer alone; stderr:\n%s", code, stdout, stderr)
			}
			reqs := m.requests()
			if len(reqs) != 2 {
				t.Fatalf("the model got %d requests, want 2", len(reqs))
			}
			wantStream := strings.HasSuffix(mode, "streamed")
			for _, r := range reqs {
				if r.Stream != wantStream || r.Model != "test-model" || r.Auth != "Bearer sk-test" {
					t.Errorf("request stream=%v model=%q auth=%q, want stream=%v, test-model, the key", r.Stream, r.Model, r.Auth, wantStream)
				}
			}
			if names := reqs[0].toolNames(); !slices.Contains(names, "demo__multiply") || !slices.Contains(names, "demo__slow_count") {
				t.Errorf("tools offered = %v, want the demo's, namespaced", names)
			}
			if got := reqs[0].Messages[len(reqs[0].Messages)-1]; got.Role != "user" || got.text() != "What is 6 times 7?" {
				t.Errorf("first request ends with %+v, want the question", got)
			}
			// The tool's text "42", then its structured content as JSON.
			if got := toolMessage(t, reqs[1], "call_1"); got != "42\n{\"result\":42}" {
				t.Errorf("tool result given to the model = %q, want %q", got, "42\n{\"result\":42}")
			}
			if !strings.Contains(stderr, "→ demo__multiply") || !strings.Contains(stderr, "← 42") {
				t.Errorf("stderr does not show the call:\n%s", stderr)
			}
		})
	}
}

// Two tool calls in one turn run in the order the model gave them: the
// note saved by the first is found by the second.
func TestTwoCallsInOneTurn(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	note := fmt.Sprintf("note-%d", time.Now().UnixNano())
	m := newFakeModel(t, scripted(t,
		calls(
			call("call_save", "demo__save_memory", `{"text":"`+note+` about lemons"}`),
			call("call_find", "demo__search_memory", `{"query":"`+note+`"}`),
		),
		answer("Saved and found."),
	))
	code, stdout, stderr := runChat(t, nil, "", "--url", gw.mcpURL(), "--base-url", m.url(), "--once", "remember lemons")
	if code != 0 || stdout != "Saved and found.\n" {
		t.Fatalf("mcp-chat = %d, %q; stderr:\n%s", code, stdout, stderr)
	}
	last := m.requests()[1]
	var order []string
	for _, msg := range last.Messages {
		if msg.Role == "tool" {
			order = append(order, msg.ToolCallID)
		}
	}
	if !slices.Equal(order, []string{"call_save", "call_find"}) {
		t.Errorf("tool results in order %v, want [call_save call_find]", order)
	}
	if found := toolMessage(t, last, "call_find"); !strings.Contains(found, note+" about lemons") {
		t.Errorf("search_memory result %q does not hold the note saved just before", found)
	}
	// The assistant message with both calls precedes the results.
	var asst *gotMessage
	for i := range last.Messages {
		if last.Messages[i].Role == "assistant" {
			asst = &last.Messages[i]
		}
	}
	if asst == nil || len(asst.ToolCalls) != 2 || asst.ToolCalls[1].Function.Name != "demo__search_memory" {
		t.Errorf("assistant message = %+v, want both calls", asst)
	}
}

// A tool result with isError goes back to the model as a tool result that
// says it failed; so does an unknown tool; the program carries on.
func TestToolErrorsGoToTheModel(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{testSrv: true})
	m := newFakeModel(t, scripted(t,
		calls(
			call("c1", "tsrv__explode", `{}`),
			call("c2", "no_such_tool", `{}`),
			call("c3", "demo__multiply", `{"a": "six"}`),
		),
		answer("Everything failed."),
	))
	code, stdout, stderr := runChat(t, nil, "", "--url", gw.mcpURL(), "--base-url", m.url(), "--once", "try")
	if code != 0 || stdout != "Everything failed.\n" {
		t.Fatalf("mcp-chat = %d, %q; stderr:\n%s", code, stdout, stderr)
	}
	last := m.requests()[1]
	for id, want := range map[string]string{
		"c1": "The tool call failed: disk on fire",
		"c2": `Error: there is no tool named "no_such_tool".`,
		"c3": "The tool call failed: ", // invalid arguments, as the demo reports them
	} {
		if got := toolMessage(t, last, id); !strings.HasPrefix(got, want) {
			t.Errorf("result of %s = %q, want it to start with %q", id, got, want)
		}
	}
}

// A sampling request from an upstream (the test server, mounted
// per-session) reaches mcp-chat through the gateway and, once the user
// approves it (or with --sampling allow), is answered by the scripted
// model, whose answer flows back into the tool result.
func TestSamplingThroughTheGateway(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{testSrv: true})
	for _, tc := range []struct{ name, stdin, mode string }{
		{"approved", "y\n", "ask"},
		{"allowed", "", "allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr := samplingRun(t, gw, tc.stdin, tc.mode)
			if tc.mode == "ask" && (!strings.Contains(stderr, "user: Summarize: a long essay about lemons") || !strings.Contains(stderr, "Let the model answer it? [y/N]")) {
				t.Errorf("stderr does not show the request for approval:\n%s", stderr)
			}
			if tc.mode == "allow" && strings.Contains(stderr, "[y/N]") {
				t.Errorf("--sampling allow asked:\n%s", stderr)
			}
		})
	}
}

// samplingRun asks the question that makes the test server sample, and
// checks that the model answered it.
func samplingRun(t *testing.T, gw *gatewayProc, stdin, mode string) string {
	t.Helper()
	chatN := 0
	var sampling *gotRequest
	m := newFakeModel(t, func(n int, req *gotRequest) step {
		if len(req.Tools) == 0 { // sampling requests offer no tools
			sampling = req
			return answer("Lemons are sour.")
		}
		chatN++
		if chatN == 1 {
			return calls(call("c1", "tsrv__summarize", `{"text":"a long essay about lemons"}`))
		}
		return answer("The summary: lemons are sour.")
	})
	code, stdout, stderr := runChat(t, nil, stdin, "--url", gw.mcpURL(), "--base-url", m.url(), "--model", "m1", "--sampling", mode, "--once", "summarize my essay")
	if code != 0 || stdout != "The summary: lemons are sour.\n" {
		t.Fatalf("mcp-chat = %d, %q; stderr:\n%s", code, stdout, stderr)
	}
	reqs := m.requests()
	if len(reqs) != 3 || sampling == nil {
		t.Fatalf("the model got %d requests (sampling: %v), want 3 with one sampling; stderr:\n%s", len(reqs), sampling != nil, stderr)
	}
	if sampling.Stream || sampling.MaxTokens != 64 || sampling.Model != "m1" {
		t.Errorf("sampling request stream=%v max_tokens=%d model=%q, want false, 64, m1", sampling.Stream, sampling.MaxTokens, sampling.Model)
	}
	if len(sampling.Messages) != 2 || sampling.Messages[0].Role != "system" || sampling.Messages[0].text() != "You write one-line summaries." ||
		sampling.Messages[1].text() != "Summarize: a long essay about lemons" {
		t.Errorf("sampling messages = %+v, want the system prompt and the user message", sampling.Messages)
	}
	if got := toolMessage(t, reqs[2], "c1"); got != "summary by fake-m1: Lemons are sour." {
		t.Errorf("tool result = %q, want the sampled text", got)
	}
	if !strings.Contains(stderr, "the server asks the model for a message") || !strings.Contains(stderr, "prefers small") {
		t.Errorf("stderr does not show the sampling request:\n%s", stderr)
	}
	return stderr
}

// A sampling request the user declines, or cannot answer (end of input),
// never reaches the model: the server gets the user's rejection. With
// --sampling deny, sampling is not offered, and the gateway answers the
// upstream with an error itself.
func TestSamplingDeclined(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{testSrv: true})
	for _, tc := range []struct{ name, stdin, mode, result, stderr string }{
		{"no", "n\n", "ask", "User rejected sampling request", "⇢ declined"},
		{"end of input", "", "ask", "User rejected sampling request", "--sampling allow answers every request"},
		{"deny", "", "deny", "does not support CreateMessage", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeModel(t, func(n int, req *gotRequest) step {
				if n == 0 {
					return calls(call("c1", "tsrv__summarize", `{"text":"a long essay about lemons"}`))
				}
				return answer("No summary, then.")
			})
			code, stdout, stderr := runChat(t, nil, tc.stdin, "--url", gw.mcpURL(), "--base-url", m.url(), "--model", "m1", "--sampling", tc.mode, "--once", "summarize my essay")
			if code != 0 || stdout != "No summary, then.\n" {
				t.Fatalf("mcp-chat = %d, %q; stderr:\n%s", code, stdout, stderr)
			}
			reqs := m.requests()
			if len(reqs) != 2 {
				t.Fatalf("the model got %d requests, want 2 (no sampling)", len(reqs))
			}
			if got := toolMessage(t, reqs[1], "c1"); !strings.HasPrefix(got, "The tool call failed: ") || !strings.Contains(got, tc.result) {
				t.Errorf("tool result = %q, want a failure mentioning %q", got, tc.result)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}

// Form elicitation through the gateway: each field is asked in the
// terminal and coerced to its type; a bad answer is asked again; defaults
// fill empty answers; a declined form returns decline.
func TestElicitForm(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{testSrv: true})
	m := newFakeModel(t, scripted(t,
		calls(call("c1", "tsrv__register", `{}`)),
		answer("Registered."),
		calls(call("c2", "tsrv__register", `{}`)),
		answer("Declined."),
	))
	r := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", m.url())
	r.send(t, "register me")
	r.stderr.waitFor(t, "The server asks: Who are you?")
	r.send(t, "y")
	// Fields in alphabetical order: age, color, name, news, score.
	r.stderr.waitFor(t, "age [integer]: ")
	r.send(t, "forty")
	r.stderr.waitFor(t, `"forty" is not a whole number`)
	r.send(t, "41")
	r.stderr.waitFor(t, "choices for color:  1) red  2) green  3) blue")
	r.send(t, "2")
	r.stderr.waitFor(t, "Name [string]: ")
	r.send(t, "Ada")
	r.stderr.waitFor(t, "news [yes/no, default false]: ")
	r.send(t, "")
	r.stderr.waitFor(t, "score [number, optional]: ")
	r.send(t, "")
	r.stdout.waitFor(t, "Registered.\n")
	r.send(t, "again")
	r.stderr.waitFor(t, "The server asks: Who are you?\n  Answer?")
	r.send(t, "n")
	r.stdout.waitFor(t, "Declined.\n")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, r.stderr)
	}

	reqs := m.requests()
	var got map[string]any
	if err := json.Unmarshal([]byte(toolMessage(t, reqs[1], "c1")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"action": "accept", "content": map[string]any{"age": 41.0, "color": "green", "name": "Ada", "news": false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("elicitation result = %v, want %v", got, want)
	}
	if got := toolMessage(t, reqs[3], "c2"); got != `{"action":"decline"}` {
		t.Errorf("declined elicitation result = %q", got)
	}
	// The second question's request carries the first exchange.
	if n := len(reqs[2].Messages); n != 5 {
		t.Errorf("the second question's request has %d messages, want 5 (question, call, result, answer, question)", n)
	}
}

// URL elicitation, directly against the test server (the gateway's
// per-session connection declares form elicitation only): the URL is
// shown and the user's confirmation is the answer. End of input cancels.
func TestElicitURL(t *testing.T) {
	t.Parallel()
	url := startTestServer(t, nil)
	m := newFakeModel(t, scripted(t,
		calls(call("c1", "open_page", `{}`)),
		answer("Opened."),
		calls(call("c2", "open_page", `{}`)),
		answer("Cancelled."),
	))
	r := startChat(t, nil, "--url", url, "--base-url", m.url())
	r.send(t, "open it")
	r.stderr.waitFor(t, "The server asks you to open a URL: Authorize the demo\n    https://example.com/authorize?x=1\n")
	r.send(t, "y")
	r.stdout.waitFor(t, "Opened.\n")
	if got := toolMessage(t, m.requests()[1], "c1"); got != "action: accept" {
		t.Errorf("URL elicitation result = %q, want accept", got)
	}
	// End of input while the question is open cancels it.
	r.send(t, "again")
	r.stderr.waitFor(t, "Open it and continue?")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, r.stderr)
	}
	if got := toolMessage(t, m.requests()[3], "c2"); got != "action: cancel" {
		t.Errorf("URL elicitation at end of input = %q, want cancel", got)
	}
}

// Roots, progress and server log messages: the working directory is
// offered as a file:// root, and the upstream's log message and progress
// are shown on stderr.
func TestRootsProgressAndLogs(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{testSrv: true})
	m := newFakeModel(t, scripted(t,
		calls(call("c1", "tsrv__where", `{}`), call("c2", "tsrv__chatty", `{}`), call("c3", "demo__slow_count", `{"n":3,"delay_ms":1}`)),
		answer("Done."),
	))
	r := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", m.url())
	r.send(t, "where am I?")
	r.stdout.waitFor(t, "Done.\n")
	// Notifications may be handled after the result they precede.
	for _, want := range []string{
		"[server warning chatty] disk almost full",
		"… tsrv__chatty: 1/2 step 1",
		"… tsrv__chatty: 2/2 step 2",
		"… demo__slow_count: 3/3 counted 3 of 3",
	} {
		r.stderr.waitFor(t, want)
	}
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, r.stderr)
	}
	if got, want := toolMessage(t, m.requests()[1], "c1"), "roots: "+fileURI(r.dir); got != want {
		t.Errorf("roots = %q, want %q", got, want)
	}
}

// Ctrl-C cancels the running call without leaving the program: the next
// question is answered, and end of input exits 0.
func TestInterruptCancelsTheCall(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	m := newFakeModel(t, scripted(t,
		calls(call("c1", "demo__slow_count", `{"n":1000,"delay_ms":50}`)),
		answer("Still here."),
	))
	r := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", m.url())
	r.send(t, "count forever")
	r.stderr.waitFor(t, "… demo__slow_count: 1/1000")
	start := time.Now()
	r.interrupts <- os.Interrupt
	r.stderr.waitFor(t, "(cancelled)")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelling took %v", d)
	}
	// The gateway was told, and cancelled its call to the demo.
	gw.log.waitFor(t, `msg="upstream call failed" upstream=demo method=tools/call err="context canceled"`)
	r.send(t, "are you there?")
	r.stdout.waitFor(t, "Still here.\n")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, r.stderr)
	}
	// The cancelled question left nothing behind: the second request holds
	// only the second question.
	reqs := m.requests()
	last := reqs[len(reqs)-1]
	for _, msg := range last.Messages {
		if msg.Role == "tool" || msg.text() == "count forever" {
			t.Errorf("the cancelled question is still in the history: %+v", last.Messages)
		}
	}
	// The server sees the cancellation (notifications/cancelled): here
	// directly, since what the gateway does with it is the gateway's test.
	cancelled := make(chan struct{}, 1)
	direct := startTestServer(t, cancelled)
	m3 := newFakeModel(t, scripted(t, calls(call("c1", "block", `{}`))))
	r3 := startChat(t, nil, "--url", direct, "--base-url", m3.url())
	r3.send(t, "block")
	r3.stderr.waitFor(t, "… block: 0 blocking")
	r3.interrupts <- os.Interrupt
	select {
	case <-cancelled:
	case <-time.After(waitTimeout):
		t.Fatal("the server's handler was never cancelled")
	}
	r3.stderr.waitFor(t, "(cancelled)")

	// At the prompt, the first Ctrl-C says how to leave and the second
	// leaves.
	r2 := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", m.url())
	r2.stderr.waitFor(t, "> ")
	r2.interrupts <- os.Interrupt
	r2.stderr.waitFor(t, "press Ctrl-C again or Ctrl-D")
	r2.interrupts <- os.Interrupt
	select {
	case code := <-r2.done:
		r2.done <- code
		if code != 0 {
			t.Errorf("exit code after two Ctrl-C = %d, want 0", code)
		}
	case <-time.After(waitTimeout):
		t.Fatal("two Ctrl-C at the prompt did not exit")
	}
}
