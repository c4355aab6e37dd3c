package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// timedTransport reports each origin round trip to the monitor: its latency, and whether it failed.
type timedTransport struct {
	next http.RoundTripper
	mon  *monitor.Monitor
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.mon.Origin(time.Since(start), err != nil || resp.StatusCode >= 500)
	return resp, err
}

// countDemand returns w, counting the response as demand (monitor.Demand, by client) once its status is
// known: a GET of the site (not of /.swarm/) answered 2xx or 3xx. HEADs, errors and 404s show nobody
// wanting the site, so that probing for missing pages cannot make a crowd.
func (s *Server) countDemand(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if r.Method != http.MethodGet || strings.HasPrefix(r.URL.Path, swarmapi.Prefix) {
		return w
	}
	return &demandWriter{ResponseWriter: w, mon: s.mon, client: s.clientIP(r)}
}

// demandWriter reports its response's final status to the monitor.
type demandWriter struct {
	http.ResponseWriter
	mon     *monitor.Monitor
	client  netip.Addr
	settled bool
}

func (d *demandWriter) WriteHeader(code int) {
	if !d.settled && code >= 200 { // 1xx are interim (101 hands the connection over: no page view)
		d.settle(code)
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *demandWriter) Write(p []byte) (int, error) {
	if !d.settled {
		d.settle(http.StatusOK)
	}
	return d.ResponseWriter.Write(p)
}

func (d *demandWriter) settle(code int) {
	d.settled = true
	if code < 400 {
		d.mon.Demand(d.client)
	}
}

// Unwrap lets http.ResponseController reach the connection (flushes, upgrades).
func (d *demandWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// monitorLoop evaluates the load regularly until ctx ends.
func (s *Server) monitorLoop(ctx context.Context) {
	tick := time.NewTicker(s.mon.TickInterval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.mon.Tick()
		}
	}
}

// Monitor is the gateway's crowd monitor.
func (s *Server) Monitor() *monitor.Monitor { return s.mon }

var (
	descState       = prometheus.NewDesc("swarmgate_crowd_state", "1 for the site's current state.", []string{"state"}, nil)
	descRate        = prometheus.NewDesc("swarmgate_request_rate", "Demand over the monitor's window: successful site GETs per second, each client's counted up to its share.", nil, nil)
	descThreshold   = prometheus.NewDesc("swarmgate_request_rate_threshold", "Demand at which a flash crowd is declared.", nil, nil)
	descLatency     = prometheus.NewDesc("swarmgate_origin_latency_seconds", "Mean origin latency over the monitor's window.", nil, nil)
	descTransitions = prometheus.NewDesc("swarmgate_crowd_transitions_total", "State transitions.", []string{"from", "to"}, nil)
)

// monitorCollector exports the monitor's state.
type monitorCollector struct{ mon *monitor.Monitor }

func (c monitorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRate, descThreshold, descLatency, descTransitions} {
		ch <- d
	}
}

func (c monitorCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.mon.Status()
	for _, s := range []monitor.State{monitor.Normal, monitor.Crowd, monitor.Ending} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.String())
	}
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, st.Load.Rate)
	ch <- prometheus.MustNewConstMetric(descThreshold, prometheus.GaugeValue, st.Threshold)
	ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, st.Load.OriginLatency.Seconds())
	for k, n := range st.Transitions {
		from, to, _ := strings.Cut(k, "->")
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(n), from, to)
	}
}
