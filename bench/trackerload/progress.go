package trackerload

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/procstat"
)

// startProgress prints a progress line every ProgressInterval until stop is called.
func (r *runner) startProgress() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		last := time.Now()
		lastReplies := r.replies.Load()
		lastLat := int64(0)
		lastCPU, _ := r.serverCPU()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := time.Now()
			dt := now.Sub(last).Seconds()
			last = now
			replies := r.replies.Load()
			cpu, cpuErr := r.serverCPU()
			cpuPct := ""
			if cpuErr == nil {
				cpuPct = fmt.Sprintf(", tracker CPU %.0f%%", 100*(cpu-lastCPU).Seconds()/dt)
			}
			lastCPU = cpu
			name := r.cfg.Name
			switch r.phase.Load() {
			case phaseConnect:
				fmt.Fprintf(r.progress, "%s: connecting: %d/%d sockets open, %d announced%s%s\n", name,
					r.connected.Load(), r.cfg.Conns, r.joined.Load(), r.rssNote(), cpuPct)
			case phaseIdle:
				fmt.Fprintf(r.progress, "%s: idle: %d sockets%s%s\n", name, r.connected.Load(), r.rssNote(), cpuPct)
			case phaseWarmup, phaseMeasure:
				n := min(r.nLat.Load(), int64(len(r.lat)))
				window := make([]uint32, n-lastLat)
				for i := range window {
					window[i] = atomic.LoadUint32(&r.lat[lastLat+int64(i)])
				}
				lastLat = n
				slices.Sort(window)
				state, lat := "warming up", ""
				if len(window) > 0 {
					state = "measuring"
					lat = fmt.Sprintf(", p50 %v p99 %v", percentile(window, .5), percentile(window, .99))
				}
				fmt.Fprintf(r.progress, "%s: %s: %.0f announces/s%s, failures %d, timeouts %d%s%s\n",
					name, state, float64(replies-lastReplies)/dt, lat, r.failures.Load(), r.timeouts.Load(), cpuPct,
					r.rssNote())
			}
			lastReplies = replies
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func (r *runner) rssNote() string {
	if r.cfg.PID <= 0 {
		return ""
	}
	rss, err := procstat.ResidentBytes(r.cfg.PID)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(", tracker RSS %s", formatBytes(float64(rss)))
}
