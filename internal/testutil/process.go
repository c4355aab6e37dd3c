package testutil

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testlog"
)

// stopGrace is how long a process has to exit on SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// Process is a child process a test runs (a real DNS server, an ACME server, nginx).
type Process struct {
	// Logs collects the process's standard output and error.
	Logs testlog.Buffer
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	stop sync.Once
}

// Exited is closed when the process has exited; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is the process's exit error, once Exited is closed.
func (p *Process) Err() error { return p.err }

// StartProcess starts cmd, collecting its output, and stops it when the test ends: SIGTERM, then SIGKILL
// after a grace period. Its output goes to the test's log when the test failed, or when the environment
// variable logEnv is set. name names it in failures.
func StartProcess(t testing.TB, cmd *exec.Cmd, name, logEnv string) *Process {
	t.Helper()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.Logs, &p.Logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() || os.Getenv(logEnv) != "" {
			t.Logf("%s's log:\n%s", name, p.Logs.String())
		}
	})
	return p
}

// Stop ends the process, SIGTERM then SIGKILL after a grace period, and waits for it; the test's end does so
// too. Calling it again does nothing.
func (p *Process) Stop() {
	p.stop.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
