package js_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/io"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/browsertest"
)

// A trace of the browser's top-level tasks gives what the Long Tasks API cannot: each task's CPU time beside
// its wall time. On a machine shared with other work, a task's wall time includes the time its thread was
// preempted, so a 5 ms task can last 200 ms; its CPU time (tdur) is the engine's own. The "toplevel" category
// records one event per task on every thread (about a microsecond each), nothing inside tasks.

// runTask is the trace event of one top-level task of a thread's message loop.
const runTask = "ThreadControllerImpl::RunTask"

// traceEvent is the part of a Chrome trace event read here (times in microseconds).
type traceEvent struct {
	Name string  `json:"name"`
	Ph   string  `json:"ph"`
	Pid  int     `json:"pid"`
	Tid  int     `json:"tid"`
	Ts   float64 `json:"ts"`
	Dur  float64 `json:"dur"`
	Tdur float64 `json:"tdur"`
	Args struct {
		Name string `json:"name"`
	} `json:"args"`
}

// mainTasks sums the tasks of one renderer's main thread.
type mainTasks struct {
	N          int
	Wall, CPU  time.Duration // summed
	Longest    time.Duration // wall time of the longest task
	LongestCPU time.Duration // CPU time of the task that took most CPU
	LongCPU    int           // tasks whose CPU time alone was over longTaskMS
}

// startTrace starts tracing the browser's top-level tasks; endTrace stops it and returns the events.
func startTrace(p *browsertest.Page) error {
	ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReturnAsStream,
		StreamFormat: tracing.StreamFormatJSON,
		TraceConfig:  &tracing.TraceConfig{IncludedCategories: []string{"toplevel"}, ExcludedCategories: []string{"*"}},
	})
	if err != nil {
		return fmt.Errorf("Tracing.start: %w", err)
	}
	return nil
}

func endTrace(p *browsertest.Page) ([]traceEvent, error) {
	ctx, cancel := context.WithTimeout(p.Ctx, 60*time.Second)
	defer cancel()
	end := func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, t, tracing.End, cdp.Empty{})
	}
	done, err := chromedp.Run(ctx, chromedp.WaitEvent(tracing.TracingComplete, nil, end))
	if err != nil {
		return nil, fmt.Errorf("Tracing.end: %w", err)
	}
	if done.DataLossOccurred {
		return nil, fmt.Errorf("trace: events were lost (buffer full)")
	}
	var buf bytes.Buffer
	for {
		r, err := chromedp.Call(ctx, io.Read, io.ReadParams{Handle: done.Stream, Size: 1 << 20})
		if err != nil {
			return nil, fmt.Errorf("IO.read: %w", err)
		}
		buf.Write(r.Data)
		if r.EOF {
			break
		}
	}
	if _, err := chromedp.Call(ctx, io.Close, io.CloseParams{Handle: done.Stream}); err != nil {
		return nil, fmt.Errorf("IO.close: %w", err)
	}
	var trace struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	if err := json.Unmarshal(buf.Bytes(), &trace); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	return trace.TraceEvents, nil
}

// pageMainThread sums the tasks that started within [from, to) (trace clock, seconds) on the main thread of
// the busiest renderer, which is the measured page's: it is the only page open besides the browser's first,
// blank tab.
func pageMainThread(events []traceEvent, from, to float64) (mainTasks, error) {
	type thread struct{ pid, tid int }
	main := map[thread]bool{}
	for _, e := range events {
		if e.Ph == "M" && e.Name == "thread_name" && e.Args.Name == "CrRendererMain" {
			main[thread{e.Pid, e.Tid}] = true
		}
	}
	us := func(f float64) time.Duration { return time.Duration(f * float64(time.Microsecond)) }
	sums := map[thread]*mainTasks{}
	for _, e := range events {
		th := thread{e.Pid, e.Tid}
		if e.Ph != "X" || e.Name != runTask || !main[th] || e.Ts < from*1e6 || e.Ts >= to*1e6 {
			continue
		}
		s := sums[th]
		if s == nil {
			s = &mainTasks{}
			sums[th] = s
		}
		s.N++
		s.Wall += us(e.Dur)
		s.CPU += us(e.Tdur)
		s.Longest = max(s.Longest, us(e.Dur))
		s.LongestCPU = max(s.LongestCPU, us(e.Tdur))
		if us(e.Tdur) > longTaskMS*time.Millisecond {
			s.LongCPU++
		}
	}
	var busiest *mainTasks
	for _, s := range sums {
		if busiest == nil || s.CPU > busiest.CPU {
			busiest = s
		}
	}
	if busiest == nil {
		return mainTasks{}, fmt.Errorf("trace: no %s on a renderer's main thread among %d events", runTask, len(events))
	}
	return *busiest, nil
}
