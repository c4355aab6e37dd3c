package trackerload

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result holds the figures of one run. Durations are in nanoseconds in JSON.
type Result struct {
	Name           string  `json:"name"`
	URL            string  `json:"url"`
	Conns          int     `json:"conns"`     // sockets asked for
	Connected      int     `json:"connected"` // sockets opened
	Joined         int     `json:"joined"`    // sockets whose first announce was answered without failure
	Swarms         int     `json:"swarms"`
	Concurrency    int     `json:"concurrency"` // announces in flight during the throughput phase
	OfferFraction  float64 `json:"offer_fraction"`
	MaxRatePerConn float64 `json:"max_rate_per_conn"`

	ConnectTime time.Duration `json:"connect_ns"`

	// Resident memory of the tracker process: once the priming sockets (a tenth, at most 100) are open, with all
	// sockets idle, and after the throughput phase. RSSPerConn is RSSIdle-RSSBefore over the sockets opened
	// after priming.
	RSSBefore  int64   `json:"rss_before_bytes"`
	RSSIdle    int64   `json:"rss_idle_bytes"`
	RSSLoaded  int64   `json:"rss_loaded_bytes"`
	RSSPerConn float64 `json:"rss_per_idle_conn_bytes"`

	// Throughput phase: announces answered within Window, and latency from send to reply.
	Window          time.Duration `json:"window_ns"`
	Announces       int64         `json:"announces"`
	AnnouncesPerSec float64       `json:"announces_per_sec"`
	P50             time.Duration `json:"p50_ns"`
	P99             time.Duration `json:"p99_ns"`
	Max             time.Duration `json:"max_ns"`
	// ServerCPU and LoadCPU are the CPU time used by the tracker and by the load generator during Window.
	// MachineCPU is the busy time of all processors in that window: what it adds to the two is other
	// processes' work competing with the run. Figures are reliable when it adds little.
	ServerCPU  time.Duration `json:"server_cpu_ns"`
	LoadCPU    time.Duration `json:"load_cpu_ns"`
	MachineCPU time.Duration `json:"machine_cpu_ns"`

	Failures        int64    `json:"failures"`         // announces answered with a failure reason within Window
	Timeouts        int64    `json:"timeouts"`         // announces not answered within ReplyTimeout, whole run
	OffersSent      int64    `json:"offers_sent"`      // announces carrying an offer, whole run
	OffersReceived  int64    `json:"offers_received"`  // offers relayed to the load generator's sockets
	AnswersReceived int64    `json:"answers_received"` // answers relayed (none expected: the generator sends none)
	Unexpected      int64    `json:"unexpected"`       // messages that were neither a reply nor a relayed offer
	SocketErrors    int64    `json:"socket_errors"`    // dial, read and write errors
	Paced           int64    `json:"paced"`            // announces delayed by MaxRatePerConn
	LostTurns       int64    `json:"lost_turns"`       // in-flight slots lost because a share had no live socket
	Errors          []string `json:"errors,omitempty"`
}

// Targets for swarmgate's tracker against bittorrent-tracker, from the issue that asked for this benchmark.
const (
	TargetAnnounceRatio = 3.0     // at least 3× the announces per second
	TargetMemoryRatio   = 1.0 / 3 // at most a third of the memory per idle socket
)

// Comparison sets two runs side by side: ours against a reference tracker.
type Comparison struct {
	Ours      *Result `json:"swarmgate"`
	Reference *Result `json:"reference,omitempty"`
	// AnnounceRatio is ours/reference announces per second; MemoryRatio ours/reference memory per idle socket.
	AnnounceRatio       float64 `json:"announce_ratio,omitempty"`
	MemoryRatio         float64 `json:"memory_ratio,omitempty"`
	MeetsAnnounceTarget bool    `json:"meets_announce_target"`
	MeetsMemoryTarget   bool    `json:"meets_memory_target"`
}

// Compare computes the ratios of ours to ref, which may be nil.
func Compare(ours, ref *Result) Comparison {
	c := Comparison{Ours: ours, Reference: ref}
	if ref == nil {
		return c
	}
	if ref.AnnouncesPerSec > 0 {
		c.AnnounceRatio = ours.AnnouncesPerSec / ref.AnnouncesPerSec
		c.MeetsAnnounceTarget = c.AnnounceRatio >= TargetAnnounceRatio
	}
	if ref.RSSPerConn > 0 {
		c.MemoryRatio = ours.RSSPerConn / ref.RSSPerConn
		c.MeetsMemoryTarget = c.MemoryRatio <= TargetMemoryRatio
	}
	return c
}

// WriteTable prints the comparison as an aligned table.
func (c Comparison) WriteTable(w io.Writer) error {
	rs := []*Result{c.Ours}
	if c.Reference != nil {
		rs = append(rs, c.Reference)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(r *Result) string, extra ...string) {
		cells := []string{label}
		for _, r := range rs {
			cells = append(cells, f(r))
		}
		cells = append(cells, extra...)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	head := []string{""}
	for _, r := range rs {
		head = append(head, r.Name)
	}
	if c.Reference != nil {
		head = append(head, "ratio", "target")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")

	ratio := func(v float64, target string, ok bool) []string {
		if c.Reference == nil || v == 0 {
			return nil
		}
		verdict := "MISSED"
		if ok {
			verdict = "met"
		}
		return []string{fmt.Sprintf("%.2f×", v), target + " " + verdict}
	}
	row("sockets open / asked", func(r *Result) string { return fmt.Sprintf("%d/%d", r.Connected, r.Conns) })
	row("connect phase", func(r *Result) string { return r.ConnectTime.Round(time.Millisecond).String() })
	row("announces/s", func(r *Result) string { return fmt.Sprintf("%.0f", r.AnnouncesPerSec) },
		ratio(c.AnnounceRatio, "≥3×", c.MeetsAnnounceTarget)...)
	row("p50 announce latency", func(r *Result) string { return r.P50.String() })
	row("p99 announce latency", func(r *Result) string { return r.P99.String() })
	row("max announce latency", func(r *Result) string { return r.Max.String() })
	row("RSS per idle socket", func(r *Result) string { return formatBytes(r.RSSPerConn) },
		ratio(c.MemoryRatio, "≤0.33×", c.MeetsMemoryTarget)...)
	row("RSS before/idle/loaded", func(r *Result) string {
		return fmt.Sprintf("%s/%s/%s", formatBytes(float64(r.RSSBefore)), formatBytes(float64(r.RSSIdle)),
			formatBytes(float64(r.RSSLoaded)))
	})
	row("tracker CPU", func(r *Result) string { return percentOf(r.ServerCPU, r.Window) })
	row("announces per tracker CPU-s", func(r *Result) string {
		if r.ServerCPU <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(r.Announces)/r.ServerCPU.Seconds())
	})
	row("load generator CPU", func(r *Result) string { return percentOf(r.LoadCPU, r.Window) })
	row("other processes' CPU", func(r *Result) string {
		if r.MachineCPU <= 0 {
			return "-"
		}
		return percentOf(max(r.MachineCPU-r.ServerCPU-r.LoadCPU, 1), r.Window)
	})
	row("announces measured", func(r *Result) string {
		return fmt.Sprintf("%d in %s", r.Announces, r.Window.Round(time.Millisecond))
	})
	row("failures/timeouts/errors", func(r *Result) string {
		return fmt.Sprintf("%d/%d/%d", r.Failures, r.Timeouts, r.SocketErrors)
	})
	row("offers sent/relayed", func(r *Result) string { return fmt.Sprintf("%d/%d", r.OffersSent, r.OffersReceived) })
	row("announces paced", func(r *Result) string { return fmt.Sprint(r.Paced) })
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("trackerload: %w", err)
	}
	for _, r := range rs {
		if other := r.MachineCPU - r.ServerCPU - r.LoadCPU; r.MachineCPU > 0 && other > r.Window/maxOtherCPU {
			fmt.Fprintf(w, "%s: WARNING: other processes took %s of CPU during the measurement: its figures are "+
				"not reliable\n", r.Name, percentOf(other, r.Window))
		}
		if ceiling := float64(r.Connected) * r.MaxRatePerConn; r.AnnouncesPerSec > 0.9*ceiling {
			fmt.Fprintf(w, "%s: WARNING: %.0f announces/s is near the pacing ceiling (%d sockets × %.0f/s): open more "+
				"sockets to measure the tracker\n", r.Name, r.AnnouncesPerSec, r.Connected, r.MaxRatePerConn)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%s: error: %s\n", r.Name, e)
		}
	}
	return nil
}

// maxOtherCPU: a run during which other processes took more than 1/maxOtherCPU of a CPU is flagged.
const maxOtherCPU = 5

func percentOf(d, window time.Duration) string {
	if d <= 0 || window <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*d.Seconds()/window.Seconds())
}

func formatBytes(b float64) string {
	switch {
	case b >= 1<<30 || b <= -(1<<30):
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20 || b <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10 || b <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
