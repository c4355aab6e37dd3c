package gateway

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources of the bytes that reach visitors: the offload ratio is everything but origin over the total.
const (
	SourceOrigin      = "origin"       // the origin's response bodies, through the proxy
	SourceGatewayHTTP = "gateway_http" // the gateway's own store: cached assets and webseed ranges
	SourceSeeder      = "seeder"       // the gateway's WebRTC seeder
	SourcePeers       = "peers"        // other browsers, as their engines report
)

// counters counts bytes served by source.
type counters struct {
	origin, gatewayHTTP, peers atomic.Int64
	uploaded                   atomic.Int64 // browsers' reported uploads to other browsers
	seeder                     func() int64 // read from the seeder when there is one
}

// ByteCounts is a snapshot of bytes served by source.
type ByteCounts map[string]int64

func (c *counters) snapshot() ByteCounts {
	b := ByteCounts{
		SourceOrigin:      c.origin.Load(),
		SourceGatewayHTTP: c.gatewayHTTP.Load(),
		SourcePeers:       c.peers.Load(),
		SourceSeeder:      0,
	}
	if c.seeder != nil {
		b[SourceSeeder] = c.seeder()
	}
	return b
}

var descBytes = prometheus.NewDesc("swarmgate_bytes_served_total", "Bytes delivered to visitors, by source.", []string{"source"}, nil)

// Describe implements prometheus.Collector.
func (c *counters) Describe(ch chan<- *prometheus.Desc) { ch <- descBytes }

// Collect implements prometheus.Collector.
func (c *counters) Collect(ch chan<- prometheus.Metric) {
	for src, n := range c.snapshot() {
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(n), src)
	}
}

// countingResponseWriter counts the body bytes written to a response.
type countingResponseWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingResponseWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}
