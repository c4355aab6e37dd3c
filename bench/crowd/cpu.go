package crowd

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
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
	// Threads splits Browsers by Chromium process type and thread name ("renderer main", "renderer
	// DedicatedWorker", "gpu VizCompositorTh", "network main"...), most first. Threads are read every
	// threadEvery samples; what threads that ended did after their last reading is a group of its own.
	Threads []ThreadCPU `json:"threads,omitempty"`
}

// ThreadCPU is the browsers' CPU time, in seconds, spent in one kind of thread.
type ThreadCPU struct {
	Group   string  `json:"group"`
	Seconds float64 `json:"seconds"`
}

// threadEvery is how often the browsers' threads are read, in samples: a file per thread, a few thousand for
// twenty browsers, so less often than the processes.
const threadEvery = 3

// unattributed is the group of the browsers' CPU time spent in threads that ended between readings.
const unattributed = "(threads that ended unread)"

type threadKey struct{ pid, tid int }

type threadSeen struct {
	group      string
	base, last time.Duration
}

// cpuMeter measures a run's CPU.
type cpuMeter struct {
	ok       bool
	t0       time.Time
	machine0 time.Duration
	self0    time.Duration
	base     map[int]time.Duration // the browsers' processes' CPU time at the start
	last     map[int]time.Duration // and when last seen
	samples  int
	kinds    map[int]string // a browser process's kind, from its command line
	threads  map[threadKey]*threadSeen
}

func startCPU() *cpuMeter {
	c := &cpuMeter{t0: time.Now(), self0: procstat.SelfCPUTime(), last: map[int]time.Duration{},
		kinds: map[int]string{}, threads: map[threadKey]*threadSeen{}}
	var err error
	if c.machine0, err = procstat.MachineCPUTime(); err != nil {
		return c
	}
	if c.base, err = procstat.Descendants(os.Getpid()); err != nil {
		return c
	}
	c.readThreads(c.base, true)
	c.ok = true
	return c
}

// readThreads reads the threads of the processes given; at the start, what they have used so far is their
// base.
func (c *cpuMeter) readThreads(procs map[int]time.Duration, start bool) {
	for pid := range procs {
		kind, ok := c.kinds[pid]
		if !ok {
			args, err := procstat.Cmdline(pid)
			if err != nil {
				continue
			}
			kind = processKind(args)
			c.kinds[pid] = kind
		}
		ths, err := procstat.Threads(pid)
		if err != nil {
			continue
		}
		for tid, th := range ths {
			k := threadKey{pid, tid}
			seen := c.threads[k]
			if seen == nil {
				name := th.Name
				if tid == pid {
					name = "main"
				}
				seen = &threadSeen{group: kind + " " + name}
				if start {
					seen.base = th.CPU
				}
				c.threads[k] = seen
			}
			seen.last = th.CPU
		}
	}
}

// processKind names a browser's process by its Chromium --type (and a utility's --utility-sub-type);
// Chromium's own browser process has none, and any other process goes by its program's name.
func processKind(args []string) string {
	if len(args) == 1 {
		args = strings.Fields(args[0]) // Chromium's children rewrite their title as one line
	}
	if len(args) == 0 {
		return "?"
	}
	kind, sub := "", ""
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--type="); ok {
			kind = v
		} else if v, ok := strings.CutPrefix(a, "--utility-sub-type="); ok {
			sub = v
		}
	}
	switch {
	case kind == "gpu-process":
		return "gpu"
	case kind == "utility" && sub == "network.mojom.NetworkService":
		return "network"
	case kind == "utility" && sub != "":
		return "utility(" + strings.TrimSuffix(sub, "Service") + ")"
	case kind != "":
		return kind
	case strings.Contains(filepath.Base(args[0]), "chrom"):
		return "browser"
	}
	return filepath.Base(args[0])
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
	if c.samples%threadEvery == 0 {
		c.readThreads(d, false)
	}
	c.samples++
}

// result is the run's CPU, from the start until now; call it once run has returned.
func (c *cpuMeter) result() CPU {
	if !c.ok {
		return CPU{}
	}
	c.samples = 0 // the last sample reads the threads too
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
	groups := map[string]time.Duration{}
	for _, th := range c.threads {
		groups[th.group] += max(0, th.last-th.base)
	}
	// A process's time counts its ended threads; what no reading of a live thread saw goes in a group of
	// its own, so that the groups add up to Browsers.
	var seen time.Duration
	for _, t := range groups {
		seen += t
	}
	if rest := browsers - seen; rest > 0 {
		groups[unattributed] = rest
	}
	threads := make([]ThreadCPU, 0, len(groups))
	for g, t := range groups {
		if t > 0 {
			threads = append(threads, ThreadCPU{Group: g, Seconds: t.Seconds()})
		}
	}
	sort.Slice(threads, func(i, j int) bool {
		if threads[i].Seconds != threads[j].Seconds {
			return threads[i].Seconds > threads[j].Seconds
		}
		return threads[i].Group < threads[j].Group
	})
	cores := runtime.NumCPU()
	return CPU{
		Cores:    cores,
		Busy:     (machine1 - c.machine0).Seconds() / (wall.Seconds() * float64(cores)),
		Browsers: browsers.Seconds(),
		Process:  (procstat.SelfCPUTime() - c.self0).Seconds(),
		Threads:  threads,
	}
}
