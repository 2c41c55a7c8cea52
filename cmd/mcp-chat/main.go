// Command mcp-chat chats with a model that uses the gateway's tools: an MCP
// host on one side, any OpenAI-compatible Chat Completions API on the other.
//
//	export OPENAI_API_KEY=...
//	mcp-chat --url http://127.0.0.1:8080/mcp --model gpt-4o-mini
//	mcp-chat --url ... --base-url http://127.0.0.1:11434/v1 --model llama3.1
//	mcp-chat --url ... --once "What is 6 times 7?"
//
// It connects over Streamable HTTP (falling back to the legacy SSE
// transport), lists every tool and offers them to the model as functions,
// runs the model's tool calls through MCP and feeds the results back until
// the model answers, streaming the answer as it arrives. It is a full host:
// it answers the server's sampling requests with the same model, asks the
// user for elicitations, offers the working directory as a root, and shows
// progress and server log messages.
//
// Answers go to stdout; prompts, tool calls and every other diagnostic go
// to stderr, so with --once stdout holds only the answer. Ctrl-C cancels
// the question being answered (the gateway is told with
// notifications/cancelled); at the prompt, a second Ctrl-C or end of input
// exits.
//
// Exit codes: 0 success, 1 a failure (the message on stderr), 2 bad usage,
// 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// main wires the process (signals, stdio, environment) to run.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp-chat: finding the working directory:", err)
		os.Exit(1)
	}
	code := run(ctx, os.Args[1:], &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, interrupts: interrupts, dir: dir,
		echo: !isTerminal(os.Stdin),
	})
	stop()
	os.Exit(code)
}

// env is what run takes from the process; tests pass their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// interrupts delivers Ctrl-C. Nil means there are none.
	interrupts <-chan os.Signal
	// dir is the working directory, offered to the server as a root.
	dir string
	// echo repeats the lines read on stderr: stdin is not a terminal.
	echo bool
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// options is the parsed command line.
type options struct {
	url            string
	model          string
	baseURL        string
	apiKeyEnv      string
	once           string
	onceSet        bool
	system         string
	noStream       bool
	maxSteps       int
	transport      string
	connectTimeout time.Duration
	logLevel       string
	sampling       string
	auth           authOptions
}

// parseFlags parses args. On error the problem has been written to stderr
// and the process should exit with code.
func parseFlags(args []string, e *env) (o *options, code int, err error) {
	o = &options{}
	fs := flag.NewFlagSet("mcp-chat", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := func(name, fallback string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/mcp", "the gateway's MCP `URL` (Streamable HTTP; a URL ending in /sse uses the legacy SSE transport)")
	fs.StringVar(&o.model, "model", def("OPENAI_MODEL", "gpt-4o-mini"), "the `model` to chat with, also used for sampling; $OPENAI_MODEL sets the default")
	fs.StringVar(&o.baseURL, "base-url", def("OPENAI_BASE_URL", "https://api.openai.com/v1"), "base `URL` of the OpenAI-compatible API, before /chat/completions; $OPENAI_BASE_URL sets the default")
	fs.StringVar(&o.apiKeyEnv, "api-key-env", "OPENAI_API_KEY", "environment `variable` holding the model API key (none is sent if it is empty)")
	fs.StringVar(&o.once, "once", "", "ask this `question`, print only the answer on stdout, and exit")
	fs.StringVar(&o.system, "system", "", "a system `prompt` for the conversation")
	fs.BoolVar(&o.noStream, "no-stream", false, "ask the model for whole responses instead of streamed ones")
	fs.IntVar(&o.maxSteps, "max-steps", 10, "at most this many model `requests` per question (each may call tools)")
	fs.StringVar(&o.transport, "transport", transportAuto, "MCP `transport`: auto, streamable or sse")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 30*time.Second, "bound on the MCP handshake (not applied while --login waits for you)")
	fs.StringVar(&o.logLevel, "log-level", "info", "server log messages at this `level` and above are shown (debug ... emergency); off asks for none")
	fs.StringVar(&o.sampling, "sampling", samplingAsk, "the server's sampling requests: `ask` before the model answers each, allow them all, or deny them (not offered)")
	fs.StringVar(&o.auth.bearerEnv, "bearer-env", "MCP_BEARER_TOKEN", "environment `variable` holding a bearer token for the gateway")
	fs.BoolVar(&o.auth.login, "login", false, "sign in with the OAuth authorization code flow (PKCE) when the gateway asks for a token")
	fs.StringVar(&o.auth.tokenURL, "oauth-token-url", "", "get tokens with the OAuth client credentials grant from this token endpoint `URL`")
	fs.StringVar(&o.auth.clientID, "oauth-client-id", "", "OAuth client `id` (client credentials; for --login, a pre-registered client instead of dynamic registration)")
	fs.StringVar(&o.auth.secretEnv, "oauth-client-secret-env", "MCP_OAUTH_CLIENT_SECRET", "environment `variable` holding the OAuth client secret")
	fs.StringVar(&o.auth.scopes, "oauth-scopes", "", "OAuth `scopes` to ask for, space- or comma-separated (--login default: what the gateway asks for)")
	fs.StringVar(&o.auth.resource, "oauth-resource", "", "RFC 8707 `resource` for client credentials tokens (default: the one the gateway's protected resource metadata names, else --url)")
	fs.IntVar(&o.auth.redirectPort, "oauth-redirect-port", 0, "loopback `port` for the --login redirect (0 picks a free one)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mcp-chat [--url URL] [--model MODEL] [--base-url URL] [--once QUESTION] [flags]\n\n"+
			"Chat with a model that uses an MCP gateway's tools.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, err
		}
		return nil, exitUsage, err
	}
	fs.Visit(func(f *flag.Flag) { o.onceSet = o.onceSet || f.Name == "once" })
	var problem string
	switch {
	case fs.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q (quote the question: --once \"...\")", fs.Arg(0))
	case o.onceSet && strings.TrimSpace(o.once) == "":
		problem = "--once needs a question"
	case o.url == "":
		problem = "--url must not be empty"
	case o.model == "":
		problem = "--model must not be empty"
	case o.maxSteps < 1:
		problem = "--max-steps must be at least 1"
	case o.transport != transportAuto && o.transport != transportStreamable && o.transport != transportSSE:
		problem = fmt.Sprintf("--transport %q: use auto, streamable or sse", o.transport)
	case o.sampling != samplingAsk && o.sampling != samplingAllow && o.sampling != samplingDeny:
		problem = fmt.Sprintf("--sampling %q: use ask, allow or deny", o.sampling)
	case o.auth.login && o.auth.tokenURL != "":
		problem = "--login and --oauth-token-url exclude each other"
	}
	if problem != "" {
		fmt.Fprintf(e.stderr, "mcp-chat: %s\n", problem)
		fs.Usage()
		return nil, exitUsage, errors.New(problem)
	}
	return o, exitOK, nil
}

// run runs mcp-chat and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	o, code, err := parseFlags(args, e)
	if err != nil {
		return code
	}
	// quit ends everything: a second Ctrl-C while a question is answered.
	ctx, quit := context.WithCancel(ctx)
	defer quit()

	term := newTerminal(e.stdin, e.stdout, e.stderr, e.echo)
	fail := func(err error) int {
		term.out.endLine()
		if ctx.Err() != nil {
			term.printf("mcp-chat: interrupted\n")
			return exitInterrupted
		}
		term.printf("mcp-chat: %v\n", err)
		return exitFailure
	}
	// Until the first question, Ctrl-C quits (while connecting, or waiting
	// for --login).
	setupDone := make(chan struct{})
	var setup sync.WaitGroup
	setup.Go(func() {
		select {
		case <-e.interrupts:
			quit()
		case <-setupDone:
		}
	})
	endSetup := sync.OnceFunc(func() {
		close(setupDone)
		setup.Wait()
	})
	defer endSetup()
	llm := &llmClient{BaseURL: o.baseURL, APIKey: e.getenv(o.apiKeyEnv), Model: o.model}

	creds, err := newCredentials(ctx, &o.auth, o.url, e.getenv, term)
	if err != nil {
		return fail(err)
	}
	defer creds.close()

	h := newHost(term, llm, e.dir, o.sampling)
	conn, err := connect(ctx, h.client, &connectOptions{
		url: o.url, transport: o.transport, timeout: o.connectTimeout, creds: creds, term: term,
	})
	if err != nil {
		return fail(err)
	}
	defer func() {
		conn.Close()
		conn.stop()
	}()
	h.setSession(conn.ClientSession)

	ir := conn.InitializeResult()
	server := "the server"
	if ir.ServerInfo != nil {
		server = ir.ServerInfo.Name
	}
	cat, err := h.catalog(ctx)
	if err != nil {
		return fail(err)
	}
	term.printf("connected to %s at %s (%s, MCP %s, %s); %d tools\n",
		server, o.url, conn.transport, ir.ProtocolVersion, creds.describe, len(cat.defs))
	if ir.Capabilities != nil && ir.Capabilities.Logging != nil && o.logLevel != "off" && o.logLevel != "" {
		if err := conn.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: mcp.LoggingLevel(o.logLevel)}); err != nil {
			term.printf("mcp-chat: setting the server log level: %v\n", err)
		}
	}

	c := &chat{llm: llm, host: h, term: term, stream: !o.noStream, maxSteps: o.maxSteps}
	if o.system != "" {
		c.history = append(c.history, message{Role: "system", Content: o.system})
	}
	if ir.Instructions != "" {
		c.history = append(c.history, message{Role: "system", Content: "Instructions from the MCP server " + server + ":\n" + ir.Instructions})
	}

	endSetup()
	a := &app{chat: c, host: h, term: term, interrupts: e.interrupts, quit: quit}
	if o.onceSet {
		err := a.turn(ctx, o.once)
		switch {
		case err == nil:
			return exitOK
		case ctx.Err() != nil || errors.Is(err, context.Canceled):
			term.printf("mcp-chat: interrupted\n")
			return exitInterrupted
		}
		return fail(err)
	}
	return a.repl(ctx)
}

// app runs questions, interactively or once.
type app struct {
	chat       *chat
	host       *host
	term       *terminal
	interrupts <-chan os.Signal
	quit       context.CancelFunc
}

// errQuit is the user leaving at the prompt.
var errQuit = errors.New("quit")

// repl reads questions until end of input, /quit or a second Ctrl-C at the
// prompt.
func (a *app) repl(ctx context.Context) int {
	a.term.printf("Ask a question. Commands: /tools, /reset, /quit. Ctrl-C cancels a running question; Ctrl-D exits.\n")
	for {
		line, err := a.prompt(ctx)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, errQuit):
			a.term.printf("\n")
			return exitOK
		case err != nil:
			return exitInterrupted
		}
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "/quit", "/exit":
			return exitOK
		case "/reset":
			a.chat.history = a.chat.history[:a.systemMessages()]
			a.term.printf("(conversation cleared)\n")
			continue
		case "/tools":
			a.listTools(ctx)
			continue
		}
		err = a.turn(ctx, line)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			a.term.printf("mcp-chat: interrupted\n")
			return exitInterrupted
		case errors.Is(err, context.Canceled):
			a.term.printf("(cancelled)\n")
		case errors.Is(err, mcp.ErrConnectionClosed), errors.Is(err, mcp.ErrSessionMissing):
			a.term.printf("mcp-chat: the connection to the gateway was lost: %v\n", err)
			return exitFailure
		default:
			a.term.printf("mcp-chat: %v\n", err)
		}
	}
}

// prompt reads the next question. The first Ctrl-C at the prompt says how
// to leave; the second returns errQuit.
func (a *app) prompt(ctx context.Context) (string, error) {
	warned := false
	for {
		a.term.printf("> ")
		select {
		case line, ok := <-a.term.lines:
			if !ok {
				return "", io.EOF
			}
			a.term.echoLine(line)
			return line, nil
		case <-a.interrupts:
			if warned {
				return "", errQuit
			}
			warned = true
			a.term.printf("\n(To exit, press Ctrl-C again or Ctrl-D)\n")
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// turn answers one question. A Ctrl-C meanwhile cancels it; a second one
// quits the program.
func (a *app) turn(ctx context.Context, question string) error {
	turnCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.host.setTurn(turnCtx)
	defer a.host.setTurn(nil)

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		cancelled := false
		for {
			select {
			case <-a.interrupts:
				if cancelled {
					a.quit()
					return
				}
				cancelled = true
				a.term.out.endLine()
				a.term.printf("^C cancelling (press Ctrl-C again to quit)\n")
				cancel()
			case <-done:
				return
			}
		}
	})
	err := a.chat.ask(turnCtx, question)
	close(done)
	wg.Wait()
	return err
}

// systemMessages counts the leading system messages of the conversation.
func (a *app) systemMessages() int {
	n := 0
	for n < len(a.chat.history) && a.chat.history[n].Role == "system" {
		n++
	}
	return n
}

// listTools prints the tools as the model sees them.
func (a *app) listTools(ctx context.Context) {
	cat, err := a.host.catalog(ctx)
	if err != nil {
		a.term.printf("mcp-chat: %v\n", err)
		return
	}
	for _, d := range cat.defs {
		a.term.printf("  %s: %s\n", d.Function.Name, oneLine(d.Function.Description, 100))
	}
}
