package firstview

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/procstat"
)

// CPU is the processor time a visit cost, from just before navigation until the page was complete, as /proc
// tells it (Linux only; absent elsewhere). The visitor's browser, the peer's and the servers share one
// machine here, where each would have its own: these figures say what each side spent, and how busy the
// machine was, so that a reader can tell a first view held back by the processors from one held back by the
// network.
type CPU struct {
	// Visitor and Peer are the CPU time, in milliseconds, of every process of the visitor's browser and of the
	// peer's (0 without one); Servers is this process's: the origin, the gateway with its seeder, and the
	// benchmark's side of the DevTools connections.
	Visitor float64 `json:"visitorMs"`
	Peer    float64 `json:"peerMs"`
	Servers float64 `json:"serversMs"`
	// Busy is the fraction of all cores' time spent busy over the span, by anything.
	Busy float64 `json:"busy"`
}

// cpuSpan measures one visit's CPU.
type cpuSpan struct {
	ok             bool
	t0             time.Time
	machine0, self time.Duration
	browsers       [2]browserCPU // the visitor's, the peer's
}

// browserCPU is one browser's process tree: its root and each process's CPU time at the span's start.
type browserCPU struct {
	pid  int
	base map[int]time.Duration
}

// startCPU begins a span over the visitor's browser (the browser of visitor, a chromedp context) and the
// peer's (nil without one).
func startCPU(visitor, peer context.Context) *cpuSpan {
	c := &cpuSpan{t0: time.Now(), self: procstat.SelfCPUTime()}
	var err error
	if c.machine0, err = procstat.MachineCPUTime(); err != nil {
		return c
	}
	for i, ctx := range []context.Context{visitor, peer} {
		if ctx == nil {
			continue
		}
		pid := browserPID(ctx)
		if pid == 0 {
			return c
		}
		base, err := treeCPU(pid)
		if err != nil {
			return c
		}
		c.browsers[i] = browserCPU{pid: pid, base: base}
	}
	c.ok = true
	return c
}

// end closes the span. A process of a browser that exits during the span is left out (its time is lost).
func (c *cpuSpan) end() *CPU {
	if !c.ok {
		return nil
	}
	wall := time.Since(c.t0)
	machine1, err := procstat.MachineCPUTime()
	if err != nil || wall <= 0 {
		return nil
	}
	var spent [2]time.Duration
	for i, b := range c.browsers {
		if b.pid == 0 {
			continue
		}
		now, err := treeCPU(b.pid)
		if err != nil {
			return nil
		}
		for pid, t := range now {
			spent[i] += max(0, t-b.base[pid]) // a process started during the span counts whole
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	return &CPU{
		Visitor: ms(spent[0]), Peer: ms(spent[1]), Servers: ms(procstat.SelfCPUTime() - c.self),
		Busy: (machine1 - c.machine0).Seconds() / (wall.Seconds() * float64(runtime.NumCPU())),
	}
}

// browserPID is the PID of the process chromedp started for the browser of ctx (0 when unknown).
func browserPID(ctx context.Context) int {
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil {
		if p := c.Browser.Process(); p != nil {
			return p.Pid
		}
	}
	return 0
}

// treeCPU is the CPU time of pid and of every process descended from it, by PID.
func treeCPU(pid int) (map[int]time.Duration, error) {
	d, err := procstat.Descendants(pid)
	if err != nil {
		return nil, err
	}
	t, err := procstat.CPUTime(pid)
	if err != nil {
		return nil, err
	}
	d[pid] = t
	return d, nil
}

// A freshly launched Chromium goes on starting up after its first tab answers: measured here (2026-12-04,
// about:blank, three launches), its processes used 0.82-0.93 s of CPU in the next 500 ms and 0.66-0.72 s in
// the 500 ms after that, most of this 2-core machine, and under 0.04 s per 500 ms from then on. A visit
// navigated at once shared the processors with that start-up, which a visitor's browser, running before the
// visitor clicks, has long finished. settle waits it out; the profile and the HTTP cache stay cold.
const (
	settleWindow = 500 * time.Millisecond
	settleIdle   = 50 * time.Millisecond // the browser's CPU in a window under which it has settled
	settleMax    = 10 * time.Second
)

// settle waits until the browser of ctx has used less than settleIdle of CPU in a settleWindow, and returns
// how long that took. Where /proc cannot tell, it returns at once.
func settle(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	pid := browserPID(ctx)
	if pid == 0 {
		return 0, nil
	}
	total := func() (time.Duration, error) {
		m, err := treeCPU(pid)
		var sum time.Duration
		for _, t := range m {
			sum += t
		}
		return sum, err
	}
	prev, err := total()
	if err != nil {
		return 0, nil // no /proc: nothing to wait for
	}
	for {
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(settleWindow):
		}
		now, err := total()
		if err != nil {
			return time.Since(t0), fmt.Errorf("settling the browser: %w", err)
		}
		if now-prev < settleIdle {
			return time.Since(t0), nil
		}
		if time.Since(t0) >= settleMax {
			return time.Since(t0), fmt.Errorf("the browser was still busy (%v of CPU in the last %v) after %v", now-prev, settleWindow, settleMax)
		}
		prev = now
	}
}
