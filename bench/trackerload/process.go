package trackerload

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Command is a tracker to start as a child process. It must print its ws:// URL on stdout once it listens.
type Command struct {
	Name string // labels the tracker in results and in its relayed output
	Path string
	Args []string
	Dir  string
	// Output receives the child's stderr, and its stdout after the URL, one line at a time prefixed with Name.
	// Nil discards them.
	Output io.Writer
}

// startTimeout bounds how long a tracker takes to print its URL.
const startTimeout = 30 * time.Second

// stopTimeout is how long a tracker has to exit after SIGTERM before it is killed.
const stopTimeout = 5 * time.Second

// urlPattern finds the tracker's address in the line it prints when listening, such as swarmgate serve's
// "swarmgate: tracker at ws://127.0.0.1:41234/.swarm/announce, metrics at ...".
var urlPattern = regexp.MustCompile(`ws://[^\s,]+`)

// Process is a tracker running as a child process. It is killed if the benchmark dies.
type Process struct {
	Name string
	URL  string
	PID  int

	cmd      *exec.Cmd
	done     chan struct{} // closed when the child has exited
	stopOnce sync.Once
	lines    sync.WaitGroup
}

// Start starts the tracker and waits until it prints its URL.
func Start(ctx context.Context, c Command) (*Process, error) {
	out := c.Output
	if out == nil {
		out = io.Discard
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = childAttr()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("trackerload: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("trackerload: %w", err)
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, fmt.Errorf("trackerload: start %s: %w", c.Name, err)
	}
	p := &Process{Name: c.Name, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	var outMu sync.Mutex
	relay := func(line string) {
		outMu.Lock()
		fmt.Fprintf(out, "%s| %s\n", c.Name, line)
		outMu.Unlock()
	}
	urlc := make(chan string, 1)
	p.lines.Go(func() {
		defer stdoutR.Close()
		sc := bufio.NewScanner(stdoutR)
		found := false
		for sc.Scan() {
			if u := urlPattern.FindString(sc.Text()); u != "" && !found {
				found = true
				urlc <- u
				continue
			}
			relay(sc.Text())
		}
	})
	p.lines.Go(func() {
		defer stderrR.Close()
		sc := bufio.NewScanner(stderrR)
		for sc.Scan() {
			relay(sc.Text())
		}
	})

	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case p.URL = <-urlc:
		return p, nil
	case <-p.done:
		err = fmt.Errorf("%w: %s exited: %s", ErrServerStart, c.Name, cmd.ProcessState)
	case <-t.C:
		err = fmt.Errorf("%w: %s printed none within %v", ErrServerStart, c.Name, startTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("trackerload: start %s: %w", c.Name, ctx.Err())
	}
	p.Stop()
	return nil, err
}

// Stop ends the tracker: SIGTERM, then SIGKILL after stopTimeout. It waits for the process to exit.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.lines.Wait()
	})
}

//go:embed node_server.mjs
var nodeServerScript []byte

// NodeServer returns the command that runs the bittorrent-tracker npm server (WebSocket only, on loopback) with
// the Node.js executable node, importing the package from the node_modules directory modules. The script is
// written to dir, which must outlive the process.
func NodeServer(node, modules, dir string) (Command, error) {
	script := filepath.Join(dir, "node_server.mjs")
	if err := os.WriteFile(script, nodeServerScript, 0o644); err != nil {
		return Command{}, fmt.Errorf("trackerload: %w", err)
	}
	return Command{Name: "bittorrent-tracker", Path: node, Args: []string{script, "--port", "0", "--modules", modules}}, nil
}

// FindNodeModules looks for node_modules/bittorrent-tracker in each directory given and its parents, and
// returns the absolute path of the first node_modules directory holding it.
func FindNodeModules(dirs ...string) (string, error) {
	for _, dir := range dirs {
		dir, err := filepath.Abs(dir)
		if err != nil {
			continue
		}
		for {
			nm := filepath.Join(dir, "node_modules")
			if _, err := os.Stat(filepath.Join(nm, "bittorrent-tracker", "server.js")); err == nil {
				return nm, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", ErrNoNodeModules
}
