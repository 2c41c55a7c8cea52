// The stream holder: this same program, re-executed as a child, that
// opens many legacy SSE streams to the gateway and holds them. Keeping the
// client ends in another process leaves this one's file descriptors (and
// heap) to the gateway, so what is reached is the gateway's limit and not
// the bench's.
//
// Protocol: the child is started with holderEnv set and its parameters as
// arguments; it writes one line to stdout, "held N" followed by why it
// stopped, and then holds the streams until its stdin closes.

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// holderEnv, set to "1" in a child's environment, makes the program a
// stream holder instead of the bench.
const holderEnv = "GATEWAY_BENCH_HOLD_STREAMS"

// isHolder reports whether this process was started as a stream holder.
func isHolder() bool { return os.Getenv(holderEnv) == "1" }

// runHolder is the child's main: it returns the exit code.
func runHolder(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hold-streams", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "legacy SSE endpoint")
	n := fs.Int("n", 0, "streams to open")
	budget := fs.Duration("budget", time.Minute, "time to open them in")
	if err := fs.Parse(args); err != nil || *url == "" || *n <= 0 {
		fmt.Fprintln(stderr, "hold-streams: --url and --n are required")
		return 2
	}
	limit, err := raiseNoFile(uint64(*n + 256))
	if err != nil {
		fmt.Fprintf(stdout, "held 0 raising RLIMIT_NOFILE: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *budget)
	defer cancel()
	conns, err := openMany(ctx, *n, func() (net.Conn, error) { return openStream(*url, nil, true) })
	reason := "all open"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		reason = fmt.Sprintf("time budget of %s ran out", *budget)
	case err != nil:
		reason = fmt.Sprintf("%v (the holder's RLIMIT_NOFILE is %d)", err, limit)
	}
	fmt.Fprintf(stdout, "held %d %s\n", len(conns), strings.ReplaceAll(reason, "\n", " "))
	io.Copy(io.Discard, stdin) // until the parent closes it
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// holder is a running stream-holder child.
type holder struct {
	*child
	stdin io.WriteCloser
}

// startHolder re-executes this program as a stream holder for want
// streams to url and waits for its report: how many it holds, and why it
// stopped. If ctx ends first, the holder is stopped.
func startHolder(ctx context.Context, url string, want int, budget time.Duration) (*holder, int, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, "", fmt.Errorf("finding this program to re-execute: %w", err)
	}
	cmd := exec.Command(exe, "--url", url, "--n", strconv.Itoa(want), "--budget", budget.String())
	cmd.Env = append(childEnv(), holderEnv+"=1")
	cmd.SysProcAttr = sysProcAttr()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, 0, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, "", fmt.Errorf("starting the stream holder: %w", err)
	}
	h := &holder{child: &child{name: "stream holder", cmd: cmd, exited: make(chan struct{}), tail: &logTail{}}, stdin: stdin}
	report := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			report <- sc.Text()
		}
		close(report)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(h.exited)
	}()
	timer := time.NewTimer(budget + startTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-report:
		if !ok {
			h.close()
			return nil, 0, "", errors.New("the stream holder exited without a report")
		}
		var held int
		if _, err := fmt.Sscanf(line, "held %d", &held); err != nil {
			h.close()
			return nil, 0, "", fmt.Errorf("the stream holder reported %q", line)
		}
		reason := strings.TrimSpace(strings.TrimPrefix(line, "held "+strconv.Itoa(held)))
		return h, held, reason, nil
	case <-ctx.Done():
		h.stop() // it reads stdin only once it has reported
		return nil, 0, "", ctx.Err()
	case <-timer.C:
		h.close()
		return nil, 0, "", fmt.Errorf("the stream holder did not report within %s", budget+startTimeout)
	}
}

// close lets the holder close its streams and exit, or stops it.
func (h *holder) close() {
	h.stdin.Close()
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-h.exited:
	case <-timer.C:
	}
	h.stop() // returns at once if it has exited
}
