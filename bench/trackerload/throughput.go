package trackerload

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/procstat"
)

// throughput keeps Concurrency announces in flight over the connected sockets and measures them.
func (r *runner) throughput(ctx context.Context, res *Result) error {
	cfg := &r.cfg
	var live []*loadConn
	for _, c := range r.conns {
		if c.ws != nil && !c.dead.Load() {
			live = append(live, c)
		}
	}
	n := min(cfg.Concurrency, len(live))
	groups := make([]*group, n)
	for i := range groups {
		groups[i] = &group{}
	}
	for i, c := range live {
		groups[i%n].conns = append(groups[i%n].conns, c)
	}
	for _, g := range groups {
		for _, c := range g.conns {
			c.group.Store(g)
		}
	}
	res.Concurrency = n

	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() { r.watchdog(stopWatch) })
	defer func() {
		close(stopWatch)
		watch.Wait()
	}()

	r.phase.Store(phaseWarmup)
	for _, g := range groups {
		g.next.Store(^uint32(0)) // the first turn goes to the group's first socket
		r.passFrom(g)
	}
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return err
	}

	cpu0, _ := r.serverCPU()
	self0 := procstat.SelfCPUTime()
	machine0, _ := procstat.MachineCPUTime()
	t0 := time.Now()
	r.measureStart.Store(r.now())
	r.phase.Store(phaseMeasure)
	timer := time.NewTimer(cfg.Duration)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.full:
	case <-ctx.Done():
		r.phase.Store(phaseDrain)
		return fmt.Errorf("trackerload: %w", ctx.Err())
	}
	r.phase.Store(phaseDrain)
	res.Window = time.Since(t0)
	cpu1, cpuErr := r.serverCPU()
	res.LoadCPU = procstat.SelfCPUTime() - self0
	if machine1, err := procstat.MachineCPUTime(); err == nil {
		res.MachineCPU = machine1 - machine0
	}
	if cpuErr == nil {
		res.ServerCPU = cpu1 - cpu0
	}

	// Let outstanding announces finish, so that their replies are not counted as errors when sockets close.
	deadline := time.Now().Add(cfg.ReplyTimeout)
	for r.outstanding() > 0 && time.Now().Before(deadline) {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}

	// Copy before sorting: the progress goroutine may still be reading r.lat atomically.
	nLat := min(r.nLat.Load(), int64(len(r.lat)))
	lat := make([]uint32, nLat)
	for i := range lat {
		lat[i] = atomic.LoadUint32(&r.lat[i])
	}
	slices.Sort(lat)
	res.Announces = nLat
	res.AnnouncesPerSec = float64(nLat) / res.Window.Seconds()
	res.P50 = percentile(lat, 0.50)
	res.P99 = percentile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = time.Duration(lat[len(lat)-1]) * time.Microsecond
	}
	res.Failures = r.measuredFailures.Load()
	res.Timeouts = r.timeouts.Load()
	res.OffersSent = r.offersSent.Load()
	res.OffersReceived = r.offersReceived.Load()
	res.AnswersReceived = r.answersReceived.Load()
	res.Unexpected = r.unexpected.Load()
	res.SocketErrors = r.socketErr.Load()
	res.Paced = r.paced.Load()
	res.LostTurns = r.lostTurns.Load()
	return nil
}

func (r *runner) serverCPU() (time.Duration, error) {
	if r.cfg.PID <= 0 {
		return 0, ErrNoProcInfo
	}
	return procstat.CPUTime(r.cfg.PID)
}

func (r *runner) outstanding() int {
	n := 0
	for _, c := range r.conns {
		if c.sentAt.Load() != 0 {
			n++
		}
	}
	return n
}

// watchdog gives up on announces unanswered for ReplyTimeout, passing their turn on.
func (r *runner) watchdog(stop <-chan struct{}) {
	t := time.NewTicker(max(r.cfg.ReplyTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := r.now()
		for _, c := range r.conns {
			s := c.sentAt.Load()
			if s != 0 && now-s > int64(r.cfg.ReplyTimeout) && c.sentAt.CompareAndSwap(s, 0) {
				r.timeouts.Add(1)
				r.passFrom(c.group.Load())
			}
		}
	}
}

func (r *runner) record(ns int64) {
	i := r.nLat.Add(1) - 1
	if i >= int64(len(r.lat)) {
		return
	}
	atomic.StoreUint32(&r.lat[i], uint32(min(ns/1e3, 1<<32-1)))
	if i == int64(len(r.lat))-1 {
		r.fullOnce.Do(func() { close(r.full) })
	}
}

func percentile(sorted []uint32, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return time.Duration(sorted[i]) * time.Microsecond
}
