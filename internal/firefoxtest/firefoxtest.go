// Package firefoxtest drives headless Debian Firefox ESR for tests, as package browsertest drives Chromium.
// Firefox runs with a fresh profile and default WebRTC preferences (host candidates hidden behind mDNS
// names, as in a visitor's Firefox); a small Node script (driver.mjs, puppeteer-core over WebDriver BiDi)
// owns the browser and takes requests as JSON lines on stdin. Every wait is bounded in time.
package firefoxtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"
)

// Path is the browser binary the tests drive.
const Path = "/usr/bin/firefox-esr"

// LaunchTimeout bounds Firefox's start: it took 30 to 50 s on a loaded two-core machine (about 3 s idle).
const LaunchTimeout = 3 * time.Minute

// slack is added to each request's own timeout (which the driver enforces) before the Go side gives up on
// the driver itself.
const slack = 10 * time.Second

// ErrClosed is returned for requests to a browser whose driver has exited.
var ErrClosed = errors.New("firefoxtest: browser closed")

// Browser is one Firefox process. Each Page opens in a user context of its own (no shared cookies, cache or
// storage), as separate visitors would.
type Browser struct {
	t       testing.TB
	Version string // as Firefox reports it, e.g. "firefox/153.8.0"

	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{} // closed when the driver's stdout ends

	mu      sync.Mutex
	next    int
	waiting map[int]chan reply
	console map[int][]string
}

type request struct {
	ID   int    `json:"id"`
	Op   string `json:"op"`
	Page int    `json:"page,omitempty"`
	URL  string `json:"url,omitempty"`
	Expr string `json:"expr,omitempty"`
	Ms   int64  `json:"ms,omitempty"`
}

type reply struct {
	ID    *int            `json:"id"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
	Event string          `json:"event"`
	Page  int             `json:"page"`
	Text  string          `json:"text"`
}

// Launch starts Firefox with a fresh profile in dir. logf, if not nil, receives console lines. Close ends it.
func Launch(dir string, logf func(format string, args ...any)) (*Browser, error) {
	if _, err := exec.LookPath(Path); err != nil {
		return nil, fmt.Errorf("firefoxtest: %s not found (bash .ci/test installs Debian firefox-esr): %w", Path, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("firefoxtest: %w", err)
	}
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return nil, errors.New("firefoxtest: cannot locate driver.mjs")
	}
	driver := filepath.Join(filepath.Dir(file), "driver.mjs")
	if _, err := os.Stat(filepath.Join(filepath.Dir(file), "..", "..", "node_modules", "puppeteer-core")); err != nil {
		return nil, fmt.Errorf("firefoxtest: puppeteer-core missing (bash .ci/test runs npm ci): %w", err)
	}
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o755); err != nil {
		return nil, fmt.Errorf("firefoxtest: %w", err)
	}
	cmd := exec.Command(node, driver, Path, profile)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("firefoxtest: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("firefoxtest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("firefoxtest: starting driver: %w", err)
	}
	b := &Browser{cmd: cmd, in: in, done: make(chan struct{}), waiting: map[int]chan reply{}, console: map[int][]string{}}
	started := make(chan reply, 1)
	b.waiting[0] = started
	b.next = 1
	go b.read(out, logf)
	select {
	case r := <-started:
		if r.Error != "" {
			b.kill()
			return nil, fmt.Errorf("firefoxtest: %s", r.Error)
		}
		_ = json.Unmarshal(r.Value, &b.Version)
	case <-b.done:
		b.kill()
		return nil, fmt.Errorf("firefoxtest: driver exited while starting Firefox: %w", ErrClosed)
	case <-time.After(LaunchTimeout + slack):
		b.kill()
		return nil, fmt.Errorf("firefoxtest: Firefox did not start within %v", LaunchTimeout+slack)
	}
	return b, nil
}

// Start launches Firefox for the test and closes it when the test ends. It fails the test when Firefox or
// puppeteer-core is not installed: run the suite with `bash .ci/test`, which installs both.
func Start(t testing.TB) *Browser {
	t.Helper()
	b, err := Launch(t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	b.t = t
	t.Cleanup(b.Close)
	return b
}

func (b *Browser) read(out io.Reader, logf func(string, ...any)) {
	defer close(b.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20) // an eval's value may be large
	for sc.Scan() {
		var r reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		if r.Event == "console" {
			b.mu.Lock()
			b.console[r.Page] = append(b.console[r.Page], r.Text)
			b.mu.Unlock()
			if logf != nil {
				logf("firefox console (page %d): %s", r.Page, r.Text)
			}
			continue
		}
		if r.ID == nil {
			continue
		}
		b.mu.Lock()
		ch := b.waiting[*r.ID]
		delete(b.waiting, *r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// call sends one request and waits for its reply, at most timeout plus slack.
func (b *Browser) call(req request, timeout time.Duration) (json.RawMessage, error) {
	ch := make(chan reply, 1)
	b.mu.Lock()
	req.ID = b.next
	b.next++
	b.waiting[req.ID] = ch
	b.mu.Unlock()
	req.Ms = timeout.Milliseconds()
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("firefoxtest: %w", err)
	}
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("firefoxtest: %s: %w", req.Op, ErrClosed)
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return nil, fmt.Errorf("firefoxtest: %s: %s", req.Op, r.Error)
		}
		return r.Value, nil
	case <-b.done:
		return nil, fmt.Errorf("firefoxtest: %s: %w", req.Op, ErrClosed)
	case <-time.After(timeout + slack):
		return nil, fmt.Errorf("firefoxtest: %s: driver gave no answer within %v", req.Op, timeout+slack)
	}
}

// Close closes Firefox and waits for the driver to exit (killing it if it does not within a minute).
func (b *Browser) Close() {
	_, _ = b.call(request{Op: "close"}, 30*time.Second)
	b.in.Close()
	select {
	case <-b.done:
	case <-time.After(time.Minute):
	}
	b.kill()
}

func (b *Browser) kill() {
	if b.cmd.ProcessState == nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
	}
}

// Page is one tab in a user context of its own.
type Page struct {
	b  *Browser
	id int
}

// NewPage opens a tab in a new user context, failing the test on error (for a Browser from Start; with
// Launch, use TryNewPage).
func (b *Browser) NewPage() *Page {
	b.t.Helper()
	p, err := b.TryNewPage()
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// TryNewPage is NewPage for callers that handle the error.
func (b *Browser) TryNewPage() (*Page, error) {
	v, err := b.call(request{Op: "newPage"}, time.Minute)
	if err != nil {
		return nil, err
	}
	p := &Page{b: b}
	if err := json.Unmarshal(v, &p.id); err != nil {
		return nil, fmt.Errorf("firefoxtest: newPage: %w", err)
	}
	return p, nil
}

// Preload runs the script source in every document the page loads from now on, before the page's own
// scripts (for instrumentation: recording what the page does, never changing it).
func (p *Page) Preload(source string) error {
	_, err := p.b.call(request{Op: "preload", Page: p.id, Expr: source}, 30*time.Second)
	return err
}

// Goto navigates to url and waits for the load event.
func (p *Page) Goto(timeout time.Duration, url string) error {
	_, err := p.b.call(request{Op: "goto", Page: p.id, URL: url}, timeout)
	return err
}

// Console returns the page's console messages so far, as "type: text", and uncaught exceptions as
// "exception: message".
func (p *Page) Console() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.b.console[p.id]...)
}

// Eval evaluates a JavaScript expression on the page, awaiting it when it is a promise, and decodes its
// JSON result into T.
func Eval[T any](p *Page, timeout time.Duration, expr string) (T, error) {
	var v T
	raw, err := p.b.call(request{Op: "eval", Page: p.id, Expr: expr}, timeout)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("firefoxtest: eval result %.200s: %w", raw, err)
	}
	return v, nil
}
