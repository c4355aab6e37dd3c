package firstview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// rules are the network's conditions as Network.emulateNetworkConditionsByRule takes them, one per URL pattern
// (see urlPatterns); nil when the network is not emulated.
func rules(n Network) []*network.Conditions {
	if !n.Emulated() {
		return nil
	}
	down := -1.0
	if n.Download > 0 {
		down = n.Download / 8
	}
	patterns := urlPatterns
	if n.ThrottleWebRTC {
		patterns = []string{""}
	}
	var out []*network.Conditions
	for _, p := range patterns {
		out = append(out, &network.Conditions{URLPattern: p, Latency: float64(n.Latency.Milliseconds()),
			DownloadThroughput: down, UploadThroughput: -1})
	}
	return out
}

// emulate applies conditions to the target of ctx. Chromium keeps them while the session that set them stays
// attached.
func emulate(ctx context.Context, conditions []*network.Conditions) error {
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		return fmt.Errorf("network emulation: %w", err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule,
		network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conditions}); err != nil {
		return fmt.Errorf("network emulation: %w", err)
	}
	return nil
}

// workerEmulation applies a network's conditions to every service worker of one browser as it appears.
// Requests a service worker makes (swarmgate's worker fetches its manifest, files it does not serve from the
// swarm, and the rest of a file over HTTP when the engine cannot go on) belong to the worker's own target, not
// to the page's, so the page's conditions do not touch them.
//
// It learns of workers from the browser's target discovery (Target.targetCreated and targetInfoChanged, both
// sent for targets that exist when discovery starts too), attaches to each service_worker target in a session
// of its own and sets the conditions there. The session stays attached until stop: detaching would lift the
// conditions. What escapes is what a worker sends between its target's creation and the conditions taking
// effect (a few CDP round trips: the longest is reported as the lag). stop checks what that was: the worker's
// Resource Timing entries that started before its conditions were set. swarmgate's worker sends nothing of its
// own until it handles its first fetch event, after it has been installed and has claimed the page.
type workerEmulation struct {
	conditions []*network.Conditions
	logger     *slog.Logger

	ctx      context.Context // canceled by stop; parent of every worker session
	cancel   context.CancelFunc
	quit     chan struct{} // closed by stop: the sessions report and detach
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu      sync.Mutex
	seen    map[target.ID]bool
	applied int
	lag     time.Duration
	early   []string
	errs    []error
}

// emulateWorkers starts applying conditions to the service workers of the browser of ctx (a tab's chromedp
// context). stop, which must be called, detaches from them and waits for every goroutine it started.
func emulateWorkers(ctx context.Context, conditions []*network.Conditions, logger *slog.Logger) (*workerEmulation, error) {
	wctx, cancel := context.WithCancel(ctx)
	e := &workerEmulation{conditions: conditions, logger: logger, ctx: wctx, cancel: cancel, quit: make(chan struct{}),
		seen: map[target.ID]bool{}}
	if err := chromedp.ListenBrowser(wctx, func(ev any) {
		switch ev := ev.(type) {
		case *target.EventTargetCreated:
			e.found(ev.TargetInfo)
		case *target.EventTargetInfoChanged:
			e.found(ev.TargetInfo)
		}
	}); err != nil {
		cancel()
		return nil, fmt.Errorf("watching for service workers: %w", err)
	}
	if err := chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, target.SetDiscoverTargets, target.SetDiscoverTargetsParams{Discover: true})
		return err
	})); err != nil {
		e.stop()
		return nil, fmt.Errorf("watching for service workers: %w", err)
	}
	return e, nil
}

// found is called on the browser's event loop: it must not block.
func (e *workerEmulation) found(info *target.Info) {
	if info == nil || info.Type != "service_worker" {
		return
	}
	at := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen[info.TargetID] || e.stopping() {
		return
	}
	e.seen[info.TargetID] = true
	e.wg.Add(1)
	go e.attach(info.TargetID, info.URL, at)
}

// attach emulates the network for one worker and stays attached until stop.
func (e *workerEmulation) attach(id target.ID, url string, found time.Time) {
	defer e.wg.Done()
	tctx, cancel := chromedp.NewContext(e.ctx, chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	defer func() {
		cancel()
		if err := chromedp.Cancel(tctx); err != nil && !errors.Is(err, context.Canceled) {
			e.logger.Debug("firstview: detaching from a service worker", slog.String("url", url), slog.Any("err", err))
		}
	}()
	err := emulate(tctx, e.conditions)
	applied := time.Now()
	lag := applied.Sub(found)
	e.mu.Lock()
	if err != nil {
		if !e.stopping() {
			e.errs = append(e.errs, fmt.Errorf("service worker %s: %w", url, err))
		}
	} else {
		e.applied++
		e.lag = max(e.lag, lag)
	}
	e.mu.Unlock()
	if err != nil {
		return
	}
	e.logger.Debug("firstview: service worker emulated", slog.String("url", url), slog.Duration("after", lag))
	select {
	case <-e.quit:
	case <-e.ctx.Done():
		return
	}
	// What the worker fetched before its conditions were set. A worker that has stopped since cannot say.
	ectx, ecancel := context.WithTimeout(tctx, 5*time.Second)
	early, err := chromedp.Run(ectx, chromedp.Evaluate[[]string](fmt.Sprintf(earlyJS, applied.UnixMilli())))
	ecancel()
	if err != nil {
		e.logger.Debug("firstview: a service worker's requests", slog.String("url", url), slog.Any("err", err))
		return
	}
	e.mu.Lock()
	e.early = append(e.early, early...)
	e.mu.Unlock()
}

// earlyJS lists, in a worker, the URLs of its Resource Timing entries that started before a time (Unix ms).
const earlyJS = `performance.getEntriesByType('resource').filter(e => performance.timeOrigin + e.startTime < %d).map(e => e.name)`

func (e *workerEmulation) stopping() bool {
	select {
	case <-e.quit:
		return true
	default:
		return e.ctx.Err() != nil
	}
}

// workerReport is what stop reports: how many workers got the conditions, the longest time from a worker's
// discovery to its conditions being set, the URLs workers fetched before that, and the workers it failed to
// emulate (one that went away before the session could set anything counts too).
type workerReport struct {
	applied int
	lag     time.Duration
	early   []string
	err     error
}

// stop detaches from every worker and waits until each is done. It may be called more than once.
func (e *workerEmulation) stop() workerReport {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		close(e.quit)
		e.mu.Unlock()
		e.wg.Wait()
		e.cancel()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return workerReport{applied: e.applied, lag: e.lag, early: e.early, err: errors.Join(e.errs...)}
}
