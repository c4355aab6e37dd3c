package crowd

import (
	"context"
	"os"
	"runtime"
	"time"

	"github.com/swarmgate/swarmgate/internal/procstat"
)

// CPU is where the machine's processor time went during a run, as /proc tells it (Linux only; zero
// elsewhere). The benchmark runs every visitor's browser and every server on one machine, where each would
// have its own: these figures say how hard they competed for it, so that a reader can tell a run bound by
// the machine's processors from one bound by the uplinks.
type CPU struct {
	Cores int `json:"cores"`
	// Busy is the fraction of all cores' time spent busy over the run, by anything (other processes too).
	Busy float64 `json:"busy"`
	// Browsers is the CPU time, in seconds, of the visitors' browsers: every process this benchmark started
	// and their descendants, from the run's start (their start-up before it left out), sampled every second
	// (a process's last second before it exits may be missed).
	Browsers float64 `json:"browsers"`
	// Process is this process's CPU time in seconds: the servers (origin, gateway, helpers, DNS), the plain
	// clients, and the benchmark's side of the browsers' DevTools connections.
	Process float64 `json:"process"`
}

// cpuMeter measures a run's CPU.
type cpuMeter struct {
	ok       bool
	t0       time.Time
	machine0 time.Duration
	self0    time.Duration
	base     map[int]time.Duration // the browsers' processes' CPU time at the start
	last     map[int]time.Duration // and when last seen
}

func startCPU() *cpuMeter {
	c := &cpuMeter{t0: time.Now(), self0: procstat.SelfCPUTime(), last: map[int]time.Duration{}}
	var err error
	if c.machine0, err = procstat.MachineCPUTime(); err != nil {
		return c
	}
	if c.base, err = procstat.Descendants(os.Getpid()); err != nil {
		return c
	}
	c.ok = true
	return c
}

// run samples the browsers' processes every interval until ctx ends.
func (c *cpuMeter) run(ctx context.Context, interval time.Duration) {
	if !c.ok {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *cpuMeter) sample() {
	d, err := procstat.Descendants(os.Getpid())
	if err != nil {
		return
	}
	for pid, t := range d {
		c.last[pid] = t
	}
}

// result is the run's CPU, from the start until now; call it once run has returned.
func (c *cpuMeter) result() CPU {
	if !c.ok {
		return CPU{}
	}
	c.sample()
	wall := time.Since(c.t0)
	machine1, err := procstat.MachineCPUTime()
	if err != nil || wall <= 0 {
		return CPU{}
	}
	var browsers time.Duration
	for pid, t := range c.last {
		browsers += max(0, t-c.base[pid])
	}
	cores := runtime.NumCPU()
	return CPU{
		Cores:    cores,
		Busy:     (machine1 - c.machine0).Seconds() / (wall.Seconds() * float64(cores)),
		Browsers: browsers.Seconds(),
		Process:  (procstat.SelfCPUTime() - c.self0).Seconds(),
	}
}
