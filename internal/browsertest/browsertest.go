// Package browsertest starts headless Debian Chromium for tests, with the flags real visitors' browsers
// differ from only in ways that do not touch WebRTC: host candidates stay hidden behind mDNS names, as in a
// default browser.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Path is the browser binary the tests drive.
const Path = "/usr/bin/chromium"

// Browser is one Chromium process. Each Page opens in a browser context of its own, so pages share no
// cookies, cache or storage, as separate visitors would.
type Browser struct {
	t   testing.TB
	ctx context.Context // the browser's first tab; parent of every page
}

// Flags are the only command-line switches the tests give Chromium.
var Flags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true), // tests run as root
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("disable-background-networking", true), // the machine has no internet to call home to
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
}

// Option changes how Launch starts Chromium, never with a Chromium switch (Flags are the only ones).
type Option func(*launch)

type launch struct{ nice int }

// Nice runs Chromium and every process it starts at the scheduling niceness n (1 to 19): on a machine that
// also runs the servers a benchmark measures, visitors' browsers then take only the CPU the servers leave,
// as they would on visitors' own machines.
func Nice(n int) Option { return func(l *launch) { l.nice = min(max(n, 0), 19) } }

// niceCommand is the command line that runs a program at niceness n, as its prefix (the program's absolute
// path, which is also its argv[0], then its arguments). Chromium sets its own threads' niceness (-8 for the
// browser's display threads, 0 for renderers), lowering it where it may: as root (CAP_SYS_NICE) it undid
// `nice -n 10` and took the CPU the servers it measured needed (in a 20-visitor crowd benchmark the servers'
// process got 5% of the machine, and helpers took 2.5 minutes for a 15 MB copy). So as root Chromium runs
// without CAP_SYS_NICE (util-linux's setpriv), and can only raise its niceness.
func niceCommand(n int, root bool) ([]string, error) {
	nice, err := exec.LookPath("nice")
	if err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}
	cmd := []string{nice, "-n", strconv.Itoa(n)}
	if !root {
		return cmd, nil
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, fmt.Errorf("browsertest: running Chromium as root at niceness %d needs setpriv (util-linux) to drop CAP_SYS_NICE: %w", n, err)
	}
	return append([]string{setpriv, "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"}, cmd...), nil
}

// Launch starts Chromium with a fresh profile in dir and returns the context of its first tab; new browser
// contexts (chromedp.WithNewBrowserContext) made from it are separate visitors. stop ends the browser.
func Launch(dir string, options ...Option) (ctx context.Context, stop func(), err error) {
	if _, err := exec.LookPath(Path); err != nil {
		return nil, nil, fmt.Errorf("browsertest: %s not found (bash .ci/test installs Debian chromium): %w", Path, err)
	}
	var l launch
	for _, o := range options {
		o(&l)
	}
	// Chromium makes a directory of its own in $TMPDIR on every start (org.chromium.Chromium.*, for its
	// singleton socket) and leaves it behind when it is stopped: one per browser, thousands over a day of
	// benchmarks. Each browser gets a TMPDIR of its own, removed with it. It cannot be under dir: the socket's
	// path must fit a Unix socket address (108 bytes), and a benchmark's dir is deep.
	tmp, err := os.MkdirTemp("", "sgchr")
	if err != nil {
		return nil, nil, fmt.Errorf("browsertest: %w", err)
	}
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("TMPDIR=" + tmp),
	}, Flags...)
	if l.nice > 0 {
		prefix, err := niceCommand(l.nice, os.Geteuid() == 0)
		if err != nil {
			os.RemoveAll(tmp)
			return nil, nil, err
		}
		// nice (and setpriv) exec Chromium in their own place: the process chromedp started and stops is
		// Chromium's.
		opts = append(opts, chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			args := append(slices.Clone(prefix), cmd.Path)
			cmd.Args = append(args, cmd.Args[1:]...)
			cmd.Path = prefix[0]
		}))
	}
	if os.Getenv("BROWSERTEST_OUTPUT") != "" {
		opts = append(opts, chromedp.CombinedOutput(os.Stderr))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("browsertest: starting chromium: %w", err)
	}
	return ctx, func() { cancel(); cancelAlloc(); os.RemoveAll(tmp) }, nil
}

// Start launches Chromium for the test and stops it when the test ends. It fails the test when Chromium is
// not installed: run the suite with `bash .ci/test`, which installs it.
func Start(t testing.TB) *Browser {
	t.Helper()
	ctx, stop, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &Browser{t: t, ctx: ctx}
}

// Page is one tab in a browser context of its own. Its console messages and uncaught exceptions are logged
// to the test and kept for Console.
type Page struct {
	Ctx context.Context

	mu      sync.Mutex
	console []string
	workers []context.Context // the dedicated workers' sessions (ListenWorkers)
}

// NewPage opens a tab in a new browser context.
func (b *Browser) NewPage() *Page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("browsertest: new page: %v", err)
	}
	p := &Page{Ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if m.Source != "" {
				line = string(m.Type) + "[" + m.Source + "]: " + m.Text
			}
			b.t.Logf("browser console: %s", line)
			p.mu.Lock()
			p.console = append(p.console, line)
			p.mu.Unlock()
		}
	}()
	return p
}

// Console returns the console messages logged so far, as "type: text" for the page's own console calls and
// exceptions, and "type[source]: text" for the browser's log (a failed network request, say).
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// Do runs chromedp actions on the page with a timeout.
func (p *Page) Do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.Ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Eval evaluates a JavaScript expression on the page, awaiting it when it is a promise, and decodes its
// JSON result into T.
func Eval[T any](p *Page, timeout time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.Ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// RepoFile returns the absolute path of a file given relative to the repository root, failing the test when
// it is missing.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatal("browsertest: cannot locate source")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("browsertest: %s missing (bash .ci/test runs npm ci): %v", rel, err)
	}
	return p
}

// ListenWorkers calls f with every CDP event of the page's dedicated workers from their first instruction
// on (network events included: a worker's requests are its own target's, not the page's), and keeps a
// session to each for EvalInWorkers. Each worker starts paused until a session of ours listens to it. Call it
// before the page loads.
func (p *Page) ListenWorkers(f func(ev any)) error {
	attached := chromedp.Events(p.Ctx, target.AttachedToTarget)
	go func() {
		for ev, err := range attached {
			if err != nil {
				return
			}
			if ev.TargetInfo.Type != "worker" {
				continue
			}
			go p.listenWorker(ev.TargetInfo.TargetID, f)
		}
	}()
	_, err := chromedp.Call(p.Ctx, target.SetAutoAttach, target.SetAutoAttachParams{
		AutoAttach: true, WaitForDebuggerOnStart: true, Flatten: ptr(true),
		// Dedicated workers only: a service worker held until someone resumes it never takes the page.
		Filter: target.Filter{{Type: "worker"}, {Exclude: true}},
	})
	return err
}

func (p *Page) listenWorker(id target.ID, f func(ev any)) {
	ctx, cancel := chromedp.NewContext(p.Ctx, chromedp.WithTargetID(id))
	// The session ends with the page's context (the worker ends with the page); cancel would close the
	// worker's target.
	_ = cancel
	if err := chromedp.Do(ctx); err != nil { // attached: network events on
		return
	}
	if err := chromedp.Listen(ctx, f); err != nil {
		return
	}
	p.mu.Lock()
	p.workers = append(p.workers, ctx)
	p.mu.Unlock()
	_, _ = chromedp.Call(ctx, runtime.RunIfWaitingForDebugger, cdp.Empty{})
}

// EvalInWorkers evaluates the JavaScript expression expr in each dedicated worker ListenWorkers attached to
// (those that ended fail quietly) and says in how many it ran.
func (p *Page) EvalInWorkers(expr string) int {
	p.mu.Lock()
	workers := slices.Clone(p.workers)
	p.mu.Unlock()
	n := 0
	for _, ctx := range workers {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr)); err == nil {
			n++
		}
		cancel()
	}
	return n
}

func ptr[T any](v T) *T { return &v }
