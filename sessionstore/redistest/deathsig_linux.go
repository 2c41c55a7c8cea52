package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal asks the kernel to kill redis-server if the test binary
// dies without running its cleanups (a panic in another goroutine, a
// timeout), so that no server outlives the test run.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
