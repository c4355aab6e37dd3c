package js_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/procstat"
	"github.com/swarmgate/swarmgate/tracker"
)

// The CPU proof of issue 14: the renderer main-thread time a visitor's page spends per MB it receives from
// peers, for the old engine and for ours, measured side by side in one run.
//
// The old engine was a bundle of webtorrent 3.0.21 with Node polyfills and a few patches to its piece
// selection; its source is gone from the tree. Its stand-in here is stock webtorrent 3.0.21's own browser
// build (node_modules/webtorrent/dist/webtorrent.min.js): the same client, streams, polyfills and hashing,
// which are where the cost per byte is, without the patches, which chose the order of pieces. It is given the
// old engine's options: a private torrent, rarest first, pieces kept in memory (as the old page store did).
//
// Each download is a fresh page in a browser context of its own (its own renderer) that has already loaded
// its engine's bundle; it takes a torrent without padding from the Go seeder (anacrolix behind pion, the
// gateway's seeder) over WebRTC on loopback, found through our tracker, with no webseed: every byte comes
// from that one peer, and every piece is SHA-1 verified by the engine. Right before the download starts and
// right after the last piece is verified, CDP Performance.getMetrics reads the page's main-thread counters:
//   - ThreadTime: CPU time of the main thread. This is the main-thread time the benchmark judges by
//     (main-ms/MB, ratio): it is what the engine costs, and other processes on the machine do not inflate it.
//   - TaskDuration: wall time the main thread spent running tasks (busy-ms/MB, busy-ratio). On an idle machine
//     it is the time the page cannot respond, CPU plus waits inside a task (RTCDataChannel.send blocks on the
//     network thread). But it also counts the time the thread was preempted: on this 2-core machine, shared
//     with other browser work at load averages of 20 to 80, it came to 3 to 13 times ThreadTime, and its
//     ratio between the engines swung from 0.32 to 1.28 in runs whose CPU ratio stayed between 0.76 and 0.91.
//   - ScriptDuration: the part of TaskDuration spent running JavaScript (wall time too).
//
// These counters cover every task of the main thread (the engine's, the browser's, garbage collection), which
// a JavaScript profiler would not, and cost nothing while the download runs. The cost is divided by the
// verified bytes from peers, which are the torrent's length for both engines; the bytes received, duplicates
// included, are printed beside it. Connection set-up (tracker, five offers, DTLS) falls inside the span, as
// it does for a visitor.
//
// Long tasks are counted two ways: by the Long Tasks API (a PerformanceObserver in the page: tasks over 50 ms
// of wall time, what the issue names), and from a trace of the browser's top-level tasks (cpu_trace_test.go),
// which gives each task's CPU time as well: on a loaded machine a task of a few milliseconds of CPU can last
// hundreds of wall milliseconds, and only the trace tells the two apart. The trace also sees tasks the Long
// Tasks API does not report (in one run here: a 301 ms task while the API's longest was 72 ms), so the table
// gives the longest wall time from both. The trace records one event per task
// (the "toplevel" category), a microsecond or so each; its summed task CPU time is printed beside ThreadTime.

// The two engines measured.
const (
	oldEngine    = "webtorrent" // stock webtorrent 3.0.21, the old bundle's stand-in
	newEngine    = "engine"     // our core, src/p2p, on the page's main thread
	workerEngine = "worker"     // our core in a dedicated worker, its data channels transferred from the page
)

// engines is every engine measured, the old one first.
var engines = []string{oldEngine, newEngine, workerEngine}

// longTaskMS is the Long Tasks API's threshold, the bound issue 14 sets for the engine's tasks.
const longTaskMS = 50

// cpuSite is the loopback site of p2p_test.go with the benchmark's page, one torrent, and the Go seeder
// alone in its swarm.
type cpuSite struct {
	e      *p2pEnv
	tt     *testTorrent
	trk    *tracker.Tracker
	wsURL  string
	seeder string // the Go seeder's peer ID, hex
}

func newCPUSite(tb testing.TB, pieceLength int64, sizes ...int) *cpuSite {
	tb.Helper()
	e := newP2PEnv(tb)
	e.mux.HandleFunc("GET /cpu.html", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/cpu.html") })
	e.mux.HandleFunc("GET /cpu_worker.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/cpu_worker.js") })
	tt := makeTorrent(tb, e.root, "cpu", pieceLength, sizes...)
	if len(tt.files) != len(sizes) {
		tb.Fatalf("the torrent has padding files: the engines would receive different bytes (webtorrent fetches padding)")
	}
	trk, wsURL := e.tracker(tb)
	s := startGoSeeder(tb, e, tt, wsURL)
	waitStats(tb, trk, "the seeder in the swarm", func(s tracker.Stats) bool { return s.Seeders == 1 })
	id := s.PeerID()
	return &cpuSite{e: e, tt: tt, trk: trk, wsURL: wsURL, seeder: hex.EncodeToString(id[:])}
}

// cpuRun is one download's figures.
type cpuRun struct {
	Engine   string
	Bytes    int64         // verified bytes from peers
	Received int64         // bytes of blocks received from peers, duplicates included
	Window   time.Duration // between the two readings of the counters
	Busy     time.Duration // main thread: TaskDuration
	Script   time.Duration // main thread: ScriptDuration
	CPU      time.Duration // main thread: ThreadTime
	Renderer time.Duration // every renderer process, every thread (/proc; -1 where it cannot be read)
	Long     []float64     // durations (ms) of the tasks over 50 ms during the download (Long Tasks API)
	Tasks    mainTasks     // the main thread's tasks during the download, from a trace
	Load     [2]float64    // the machine's 1-minute load average before and after
}

type pageRun struct {
	Error    string
	T0, T1   float64 // performance.now() at the start and the end of the download
	Bytes    int64
	Received int64
	Peers    []string
}

// measure downloads the site's torrent with one engine in a fresh page and returns its figures, after
// checking every file's SHA-256 and that the bytes came from the Go seeder alone.
func (c *cpuSite) measure(tb testing.TB, engine string, timeout time.Duration) cpuRun {
	tb.Helper()
	p := c.e.b.NewPage()
	defer func() {
		if err := chromedp.Cancel(p.Ctx); err != nil {
			tb.Logf("closing the %s page: %v", engine, err)
		}
	}()
	if err := p.Do(20*time.Second, chromedp.Navigate(c.e.srv.URL+"/cpu.html")); err != nil {
		tb.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](p, 10*time.Second, `window.ready`); err != nil {
		tb.Fatalf("benchmark page: %v", err)
	}
	call[bool](tb, p, 20*time.Second, "load", engine)
	if err := p.Do(10*time.Second, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, performance.Enable, performance.EnableParams{})
		return chromedp.Void{}, err
	}); err != nil {
		tb.Fatalf("Performance.enable: %v", err)
	}

	load0 := loadAverage(tb)
	if err := startTrace(p); err != nil {
		tb.Fatal(err)
	}
	before, began, rend0 := mainThread(tb, p), time.Now(), rendererCPU(tb)
	r := call[pageRun](tb, p, timeout+5*time.Second, "run", map[string]any{
		"timeout": timeout.Milliseconds(),
		"torrent": c.tt.torrentFile(tb, c.wsURL), // trackers only: no url-list
		"info":    base64.StdEncoding.EncodeToString(c.tt.infoBytes), "infoHash": c.tt.ih.HexString(),
		"trackers": []string{c.wsURL},
	})
	after, window, rend1 := mainThread(tb, p), time.Since(began), rendererCPU(tb)
	events, err := endTrace(p)
	if err != nil {
		tb.Fatal(err)
	}
	if r.Error != "" {
		tb.Fatalf("%s: %s", engine, r.Error)
	}
	tasks, err := pageMainThread(events, before["Timestamp"], after["Timestamp"])
	if err != nil {
		tb.Fatal(err)
	}
	run := cpuRun{Engine: engine, Bytes: r.Bytes, Received: r.Received, Window: window, Tasks: tasks,
		Load:     [2]float64{load0, loadAverage(tb)},
		Busy:     after.sub(before, "TaskDuration"),
		Script:   after.sub(before, "ScriptDuration"),
		CPU:      after.sub(before, "ThreadTime"),
		Renderer: -1,
	}
	if rend0 >= 0 && rend1 >= 0 {
		run.Renderer = rend1 - rend0
	}
	run.Long = call[[]float64](tb, p, 5*time.Second, "tasks", map[string]float64{"from": r.T0, "to": r.T1})

	f := call[struct {
		Error string
		Files map[string]string
	}](tb, p, 60*time.Second, "files", nil)
	if f.Error != "" {
		tb.Fatalf("%s: reading the files back: %s", engine, f.Error)
	}
	checkFiles(tb, engine, f.Files, c.tt)
	// The seeder alone; its wire may have opened more than once (a connection lost under load and made again).
	if len(r.Peers) == 0 || slices.ContainsFunc(r.Peers, func(id string) bool { return id != c.seeder }) {
		tb.Errorf("%s received from %q; want the Go seeder %s alone", engine, r.Peers, c.seeder)
	}
	if run.Bytes != c.tt.length || run.Received < run.Bytes {
		tb.Errorf("%s: %d verified bytes from peers, %d received; want all %d from the seeder", engine, run.Bytes, run.Received, c.tt.length)
	}

	// The page leaves the swarm before the next one comes: the next download must have the seeder alone.
	call[bool](tb, p, 10*time.Second, "stop", nil)
	waitStats(tb, c.trk, "the "+engine+" page gone", func(s tracker.Stats) bool { return s.Peers == 1 })
	return run
}

// counters are the page's main-thread metrics (Performance.getMetrics), in seconds.
type counters map[string]float64

func mainThread(tb testing.TB, p *browsertest.Page) counters {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		tb.Fatalf("Performance.getMetrics: %v", err)
	}
	c := counters{}
	for _, m := range res.Metrics {
		c[m.Name] = m.Value
	}
	for _, name := range []string{"Timestamp", "TaskDuration", "ScriptDuration", "ThreadTime"} {
		if _, ok := c[name]; !ok {
			tb.Fatalf("Performance.getMetrics has no %s (Chromium changed its metrics?)", name)
		}
	}
	return c
}

func (c counters) sub(before counters, name string) time.Duration {
	return time.Duration((c[name] - before[name]) * float64(time.Second))
}

// rendererCPU is the CPU time of every Chromium renderer process descended from this test, every thread
// (the main thread, workers, WebRTC's network thread, the compositor), or -1 where /proc cannot say. It is
// what the page costs its visitor's machine in all, wherever the engine runs: a core moved off the main
// thread still costs this.
func rendererCPU(tb testing.TB) time.Duration {
	procs, err := procstat.Descendants(os.Getpid())
	if err != nil {
		tb.Logf("renderer CPU: %v", err)
		return -1
	}
	var sum time.Duration
	for pid, cpu := range procs {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmd), "--type=renderer") {
			sum += cpu
		}
	}
	return sum
}

// loadAverage is the machine's 1-minute load average: other work on a shared machine preempts the page's
// main thread and inflates its busy time and long tasks (not its CPU time).
func loadAverage(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		tb.Logf("load average: %v", err)
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		tb.Logf("load average: %v", err)
		return -1
	}
	return l
}

// cpuTotal pools one engine's runs.
type cpuTotal struct {
	runs              int
	bytes, received   int64
	wall              time.Duration
	busy, script, cpu time.Duration
	renderer          time.Duration // -1 once a run could not read it
	long              []float64     // Long Tasks API, ms
	tasks             mainTasks     // traced, summed
	load              float64       // highest load average seen
}

func total(runs []cpuRun, engine string) cpuTotal {
	var t cpuTotal
	for _, r := range runs {
		if r.Engine != engine {
			continue
		}
		t.runs++
		t.bytes += r.Bytes
		t.received += r.Received
		t.wall += r.Window
		t.busy += r.Busy
		t.script += r.Script
		t.cpu += r.CPU
		if r.Renderer < 0 || t.renderer < 0 {
			t.renderer = -1
		} else {
			t.renderer += r.Renderer
		}
		t.long = append(t.long, r.Long...)
		t.tasks.N += r.Tasks.N
		t.tasks.Wall += r.Tasks.Wall
		t.tasks.CPU += r.Tasks.CPU
		t.tasks.Longest = max(t.tasks.Longest, r.Tasks.Longest)
		t.tasks.LongestCPU = max(t.tasks.LongestCPU, r.Tasks.LongestCPU)
		t.tasks.LongCPU += r.Tasks.LongCPU
		t.load = max(t.load, r.Load[0], r.Load[1])
	}
	return t
}

// perMB is milliseconds per MB (10^6 bytes) of the pooled verified bytes.
func (t cpuTotal) perMB(d time.Duration) float64 {
	return ms(d) / (float64(t.bytes) / 1e6)
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// rendererPerMB is the renderer processes' CPU ms per MB, or "-" where /proc could not say.
func (t cpuTotal) rendererPerMB() string {
	if t.renderer < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", t.perMB(t.renderer))
}

// ratio is a/b per MB, or "-" when either could not be read.
func ratio(a, b time.Duration, ta, tb cpuTotal) string {
	if a < 0 || b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", ta.perMB(a)/tb.perMB(b))
}

func (t cpuTotal) longest() float64 {
	if len(t.long) == 0 {
		return 0
	}
	return slices.Max(t.long)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// table prints the runs and their totals side by side.
func table(runs []cpuRun, tt *testTorrent, pieceLength int64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "renderer main-thread time per MB received from peers: %.1f MB torrent, %d KiB pieces, no padding, from the Go seeder over WebRTC on loopback\n",
		float64(tt.length)/1e6, pieceLength>>10)
	fmt.Fprintf(&sb, "old bundle = stock webtorrent 3.0.21 (node_modules/webtorrent/dist/webtorrent.min.js), standing in for the patched bundle whose source is gone; engine = js/src/p2p on the main thread; worker = js/src/p2p in a dedicated worker, the page making its peer connections (as the page engine runs it)\n")
	fmt.Fprintf(&sb, "cpu = ThreadTime (the main thread's CPU time), busy = TaskDuration (wall time in tasks: inflated by preemption on a loaded machine), script = ScriptDuration (wall); renderer = CPU time of the renderer processes, every thread (/proc); long tasks: Long Tasks API (wall) and the trace (wall, CPU)\n")
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tengine\tMB\treceived MB\ts\tMB/s\tcpu ms/MB\trenderer ms/MB\tbusy ms/MB\tscript ms/MB\ttraced cpu ms/MB\ttasks\t>50ms wall\tlongest wall ms (API/trace)\t>50ms cpu\tlongest cpu ms\tload\t")
	row := func(run, engine string, t cpuTotal) {
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.0f/%.0f\t%d\t%.1f\t%.1f\t\n", run, engine,
			float64(t.bytes)/1e6, float64(t.received)/1e6, t.wall.Seconds(), float64(t.bytes)/1e6/t.wall.Seconds(),
			t.perMB(t.cpu), t.rendererPerMB(), t.perMB(t.busy), t.perMB(t.script), t.perMB(t.tasks.CPU), t.tasks.N,
			len(t.long), t.longest(), ms(t.tasks.Longest), t.tasks.LongCPU, ms(t.tasks.LongestCPU), t.load)
	}
	for k, r := range runs {
		row(fmt.Sprint(k+1), r.Engine, total([]cpuRun{r}, r.Engine))
	}
	for _, engine := range engines {
		if total(runs, engine).runs > 0 {
			row("all", engine, total(runs, engine))
		}
	}
	_ = w.Flush()
	old := total(runs, oldEngine)
	for _, engine := range engines[1:] {
		ours := total(runs, engine)
		if ours.runs == 0 {
			continue
		}
		fmt.Fprintf(&sb, "%s/webtorrent per MB: main-thread cpu %.2f (issue 14: at most 0.33), renderer cpu %s, busy %.2f; %s's main-thread tasks over %d ms: %d by wall time (Long Tasks API), %d by CPU time (trace) (issue 14: none)\n",
			engine, ours.perMB(ours.cpu)/old.perMB(old.cpu), ratio(ours.renderer, old.renderer, ours, old), ours.perMB(ours.busy)/old.perMB(old.busy), engine, longTaskMS, len(ours.long), ours.tasks.LongCPU)
	}
	return sb.String()
}

// BenchmarkEngineCPU measures both engines side by side, each iteration two rounds with the order swapped
// (webtorrent then engine, engine then webtorrent) so that warm-up and drift in the machine's load fall on
// both alike:
//
//	go test -run '^$' -bench EngineCPU -benchtime 1x ./js/
func BenchmarkEngineCPU(b *testing.B) {
	const pieceLength = 512 << 10
	// 48 MB in three files whose sizes, but the last, are whole pieces: no padding.
	c := newCPUSite(b, pieceLength, 16<<20, 24<<20, 8<<20-100_000)
	var runs []cpuRun
	for range b.N {
		for _, order := range [][]string{engines, reversed(engines)} {
			for _, engine := range order {
				runs = append(runs, c.measure(b, engine, 2*time.Minute))
			}
		}
	}
	// Printed, not logged: the testing package cuts a benchmark's log to its first lines unless -v.
	fmt.Print(table(runs, c.tt, pieceLength))
	old, ours := total(runs, oldEngine), total(runs, newEngine)
	b.ReportMetric(0, "ns/op") // one op is minutes of downloads; the figures below are what counts
	b.ReportMetric(old.perMB(old.cpu), "main-ms/MB-webtorrent")
	b.ReportMetric(ours.perMB(ours.cpu), "main-ms/MB-engine")
	b.ReportMetric(ours.perMB(ours.cpu)/old.perMB(old.cpu), "ratio")
	b.ReportMetric(old.perMB(old.busy), "busy-ms/MB-webtorrent")
	b.ReportMetric(ours.perMB(ours.busy), "busy-ms/MB-engine")
	b.ReportMetric(ours.perMB(ours.busy)/old.perMB(old.busy), "busy-ratio")
	b.ReportMetric(old.longest(), "longest-task-ms-webtorrent")
	b.ReportMetric(ours.longest(), "longest-task-ms-engine")
	b.ReportMetric(float64(len(ours.long)), "long-tasks-engine")
	b.ReportMetric(ms(old.tasks.LongestCPU), "longest-task-cpu-ms-webtorrent")
	b.ReportMetric(ms(ours.tasks.LongestCPU), "longest-task-cpu-ms-engine")
	b.ReportMetric(float64(ours.tasks.LongCPU), "long-tasks-cpu-engine")
	wk := total(runs, workerEngine)
	b.ReportMetric(wk.perMB(wk.cpu), "main-ms/MB-worker")
	b.ReportMetric(wk.perMB(wk.cpu)/old.perMB(old.cpu), "ratio-worker")
	if wk.renderer >= 0 && old.renderer >= 0 {
		b.ReportMetric(old.perMB(old.renderer), "renderer-ms/MB-webtorrent")
		b.ReportMetric(wk.perMB(wk.renderer), "renderer-ms/MB-worker")
	}
	b.ReportMetric(float64(len(wk.long)), "long-tasks-worker")
}

// TestEngineCPU runs the benchmark's measurement once per engine on a small torrent, so that it cannot rot:
// both engines download every byte from the seeder and the figures are there and consistent. No timing is
// judged here; BenchmarkEngineCPU gives the figures.
func TestEngineCPU(t *testing.T) {
	const pieceLength = 256 << 10
	c := newCPUSite(t, pieceLength, 1<<20, 2<<20, 1<<20-54_321)
	var runs []cpuRun
	for _, engine := range engines {
		r := c.measure(t, engine, 20*time.Second)
		// A thread's busy and CPU time fit in the span they were read over (plus the clocks' rounding).
		const slack = 10 * time.Millisecond
		if r.Busy <= 0 || r.Script <= 0 || r.CPU <= 0 || r.Busy > r.Window+slack || r.CPU > r.Window+slack || r.Script > r.Busy+slack {
			t.Errorf("%s: main thread busy %v, script %v, CPU %v over %v: want each positive, script within busy, all within the span", engine, r.Busy, r.Script, r.CPU, r.Window)
		}
		// The traced tasks are part of the thread's CPU time, and no task took more CPU than wall time.
		if r.Tasks.N == 0 || r.Tasks.CPU <= 0 || r.Tasks.CPU > r.CPU+slack || r.Tasks.LongestCPU > r.Tasks.Longest+slack/10 {
			t.Errorf("%s: traced %d tasks, %v CPU (thread: %v), longest %v wall and %v CPU: want some tasks, within the thread's CPU, CPU within wall", engine, r.Tasks.N, r.Tasks.CPU, r.CPU, r.Tasks.Longest, r.Tasks.LongestCPU)
		}
		for _, ms := range r.Long {
			if ms < longTaskMS {
				t.Errorf("%s: a long task of %.1f ms; the Long Tasks API reports only those over %d ms", engine, ms, longTaskMS)
			}
		}
		runs = append(runs, r)
	}
	for _, engine := range engines {
		if tot := total(runs, engine); tot.runs != 1 || !(tot.perMB(tot.busy) > 0) || !(tot.perMB(tot.cpu) > 0) {
			t.Errorf("%s: %d runs pooled, %.1f busy ms/MB, %.1f CPU ms/MB; want one run and positive figures", engine, tot.runs, tot.perMB(tot.busy), tot.perMB(tot.cpu))
		}
	}
	out := table(runs, c.tt, pieceLength)
	t.Log("\n" + out)
}
