package upstream

// This file runs a stdio upstream as a child process. The go-sdk's
// CommandTransport inherits the gateway's whole environment and signals only
// the direct child, so the gateway starts the child itself:
//
//   - the environment is explicit: the names in Options.PassEnv (PATH and HOME
//     by default) plus the upstream's configured env, nothing else;
//   - the child leads its own process group, so stopping it reaches its
//     children too (for example the binary that `go run` starts);
//   - on Linux the child gets SIGKILL if the gateway dies without stopping it;
//   - stopping goes in stages: close stdin, wait; SIGTERM to the group, wait;
//     SIGKILL to the group;
//   - stderr lines go to the gateway's log, tagged with the upstream's name.
//
// The pipes are os.Pipe pairs rather than exec's StdoutPipe, so reaping the
// child (cmd.Wait) never races the protocol reader for the last bytes.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// maxStderrLine bounds one logged line of a child's stderr.
const maxStderrLine = 8 << 10

type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  *os.File // write end of the child's stdin
	stdout *os.File // read end of the child's stdout
	grace  time.Duration
	log    *slog.Logger

	exited     chan struct{} // closed once cmd.Wait has returned
	waitErr    error         // set before exited is closed
	stderr     *os.File      // read end of the child's stderr
	stderrDone chan struct{} // closed once logStderr has returned

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts the child described by cfg.
func startProcess(cfg Config, passEnv []string, grace time.Duration, log *slog.Logger) (*process, error) {
	cmd := exec.Command(cfg.Command, cfg.Args...)
	cmd.Dir = cfg.Dir
	cmd.Env = childEnv(passEnv, cfg.Env)
	cmd.SysProcAttr = sysProcAttr()

	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		return nil, err
	}
	// The child holds its own copies now; closing ours makes EOF on stdout
	// arrive when the child (and every process that inherited it) exits.
	closeAll(inR, outW, errW)

	p := &process{
		name:   cfg.Name,
		cmd:    cmd,
		stdin:  inW,
		stdout: outR,
		grace:  grace,
		log:    log,
		exited: make(chan struct{}),

		stderr:     errR,
		stderrDone: make(chan struct{}),
	}
	go p.logStderr(errR)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// childEnv builds the explicit environment of a child: the named variables
// of the gateway's own environment, then the configured ones (which win).
func childEnv(passEnv []string, env map[string]string) []string {
	// Never nil: exec.Cmd gives a child with a nil Env the gateway's whole
	// environment.
	out := make([]string, 0, len(passEnv)+len(env))
	for _, k := range passEnv {
		if _, set := env[k]; set {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

func (p *process) logStderr(r *os.File) {
	defer close(p.stderrDone)
	defer r.Close()
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the limit: note it, skip the rest of it
			// and keep reading.
			p.log.LogAttrs(context.Background(), slog.LevelWarn, "upstream stderr line too long",
				slog.String("upstream", p.name), slog.Int("limit", maxStderrLine))
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return
			}
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > 0 || err == nil {
			p.log.LogAttrs(context.Background(), slog.LevelInfo, "upstream stderr",
				slog.String("upstream", p.name), slog.String("line", string(line)))
		}
		if err != nil {
			return
		}
	}
}

// stop ends the child in stages and returns when it has exited. It is
// idempotent.
func (p *process) stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stopStaged() })
	return p.stopErr
}

func (p *process) stopStaged() error {
	defer p.drainStderr()
	p.stdin.Close()
	if p.waitFor(p.grace) {
		p.killGroup(syscall.SIGKILL) // children it left behind
		return nil
	}
	p.log.LogAttrs(context.Background(), slog.LevelWarn, "upstream did not exit after stdin closed; sending SIGTERM",
		slog.String("upstream", p.name))
	p.killGroup(syscall.SIGTERM)
	if p.waitFor(p.grace) {
		p.killGroup(syscall.SIGKILL)
		return nil
	}
	p.log.LogAttrs(context.Background(), slog.LevelWarn, "upstream did not exit after SIGTERM; sending SIGKILL",
		slog.String("upstream", p.name))
	p.killGroup(syscall.SIGKILL)
	<-p.exited
	return nil
}

// drainStderr waits until the child's last stderr lines are logged, so that
// none is logged after stop returns. The pipe ends when the last process
// holding it (the whole group is dead by now) exits; one that left the group
// gets a grace period, then its stderr is cut off.
func (p *process) drainStderr() {
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.stderrDone:
		return
	case <-t.C:
	}
	p.stderr.Close() // ends the blocked read
	<-p.stderrDone
}

func (p *process) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// killGroup signals the child's process group. The group outlives its leader
// while any member lives, so this also reaches orphaned grandchildren.
func (p *process) killGroup(sig syscall.Signal) {
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.cmd.Process.Signal(sig)
	}
}

// exitError describes how the child ended, for logs.
func (p *process) exitError() error {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return errors.New("process exited with status 0")
		}
		return fmt.Errorf("process %w", p.waitErr)
	default:
		return nil
	}
}

// stdinCloser is the writer half handed to the SDK: closing it stops the
// child in stages.
type stdinCloser struct{ p *process }

func (w stdinCloser) Write(b []byte) (int, error) { return w.p.stdin.Write(b) }
func (w stdinCloser) Close() error                { return w.p.stop() }

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
