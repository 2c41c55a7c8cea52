// The terminal: one reader of stdin shared by the chat prompt and the
// server's elicitation questions (which arrive while a question is being
// answered), and a stderr that many goroutines write to.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// terminal reads lines from stdin and writes prompts and diagnostics to
// stderr. Its methods are safe for concurrent use; lines go to one reader
// at a time, in order.
type terminal struct {
	lines <-chan string // closed at EOF or on a read error
	err   *syncWriter   // stderr
	out   *syncWriter   // stdout
	// echo repeats each line read after its prompt, for input that is not
	// a terminal (which echoes by itself), so a piped session reads well.
	echo bool
}

// newTerminal starts reading stdin. The reading goroutine ends at EOF or
// on a read error; a Read blocked on a real terminal cannot be interrupted,
// so when the program ends first the goroutine ends with the process.
func newTerminal(stdin io.Reader, stdout, stderr io.Writer, echo bool) *terminal {
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdin)
		for {
			line, err := r.ReadString('\n')
			if line != "" || err == nil {
				lines <- strings.TrimRight(line, "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return &terminal{lines: lines, err: &syncWriter{w: stderr}, out: &syncWriter{w: stdout}, echo: echo}
}

// readLine writes prompt to stderr and returns the next line, io.EOF at the
// end of input, or ctx's error if it is done first.
func (t *terminal) readLine(ctx context.Context, prompt string) (string, error) {
	if prompt != "" {
		t.err.WriteString(prompt)
	}
	select {
	case line, ok := <-t.lines:
		if !ok {
			return "", io.EOF
		}
		t.echoLine(line)
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// echoLine writes line to stderr if t echoes input.
func (t *terminal) echoLine(line string) {
	if t.echo {
		t.err.WriteString(line + "\n")
	}
}

// printf writes a diagnostic line (or lines) to stderr.
func (t *terminal) printf(format string, args ...any) {
	t.err.WriteString(fmt.Sprintf(format, args...))
}

// syncWriter serializes writes to w, and remembers whether the last byte
// written ended a line.
type syncWriter struct {
	mu      sync.Mutex // guards the fields below
	w       io.Writer
	midLine bool
}

// Write writes p to the underlying writer. The lock is held during the
// write: serializing writes is what it is for.
func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) > 0 {
		s.midLine = p[len(p)-1] != '\n'
	}
	return s.w.Write(p)
}

// WriteString writes str, ignoring errors: a terminal that cannot be
// written to leaves nothing useful to do.
func (s *syncWriter) WriteString(str string) {
	s.Write([]byte(str))
}

// endLine writes a newline if the last write left a line open.
func (s *syncWriter) endLine() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.midLine {
		s.w.Write([]byte("\n"))
		s.midLine = false
	}
}
