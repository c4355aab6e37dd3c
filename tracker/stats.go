package tracker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type counters struct {
	connsTotal     atomic.Int64
	messagesIn     atomic.Int64
	messagesOut    atomic.Int64
	announces      atomic.Int64
	answers        atomic.Int64
	scrapes        atomic.Int64
	refused        atomic.Int64
	offersRelayed  atomic.Int64
	answersRelayed atomic.Int64
}

// Stats is a snapshot of the tracker's state and counters.
type Stats struct {
	Swarms      int
	Peers       int
	Seeders     int
	Leechers    int
	Connections int

	ConnectionsTotal int64 // sockets accepted since start
	MessagesIn       int64
	MessagesOut      int64
	Announces        int64
	Answers          int64
	Scrapes          int64
	Refused          int64 // requests answered with a failure reason, or sockets closed for misbehaving
	OffersRelayed    int64
	AnswersRelayed   int64
}

// Stats returns a snapshot of the tracker's state.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	s := Stats{Swarms: len(t.swarms), Connections: len(t.conns)}
	for _, sw := range t.swarms {
		s.Peers += len(sw.list)
		s.Seeders += sw.seeders
	}
	t.mu.Unlock()
	s.Leechers = s.Peers - s.Seeders
	s.ConnectionsTotal = t.stats.connsTotal.Load()
	s.MessagesIn = t.stats.messagesIn.Load()
	s.MessagesOut = t.stats.messagesOut.Load()
	s.Announces = t.stats.announces.Load()
	s.Answers = t.stats.answers.Load()
	s.Scrapes = t.stats.scrapes.Load()
	s.Refused = t.stats.refused.Load()
	s.OffersRelayed = t.stats.offersRelayed.Load()
	s.AnswersRelayed = t.stats.answersRelayed.Load()
	return s
}

// SwarmCounts returns the seeders and leechers of one swarm (zero when it has no peers).
func (t *Tracker) SwarmCounts(ih ID) (complete, incomplete int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.swarms[ih]; s != nil {
		return s.counts()
	}
	return 0, 0
}

var (
	descGauge = func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("swarmgate_tracker_"+name, help, nil, nil)
	}
	descSwarms      = descGauge("swarms", "Swarms with at least one peer.")
	descPeers       = descGauge("peers", "Peers in all swarms.")
	descSeeders     = descGauge("seeders", "Peers that hold the whole torrent.")
	descLeechers    = descGauge("leechers", "Peers still downloading.")
	descConnections = descGauge("connections", "Open WebSocket connections.")
	descConnsTotal  = descGauge("connections_total", "WebSocket connections accepted.")
	descMessages    = prometheus.NewDesc("swarmgate_tracker_messages_total", "Messages by direction.", []string{"direction"}, nil)
	descRequests    = prometheus.NewDesc("swarmgate_tracker_requests_total", "Requests by kind.", []string{"kind"}, nil)
	descRefused     = descGauge("refused_total", "Requests refused with a failure reason, and sockets closed for misbehaving.")
	descRelayed     = prometheus.NewDesc("swarmgate_tracker_relayed_total", "Signalling messages relayed between peers.", []string{"kind"}, nil)
)

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSwarms, descPeers, descSeeders, descLeechers, descConnections,
		descConnsTotal, descMessages, descRequests, descRefused, descRelayed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	s := t.Stats()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descSwarms, s.Swarms)
	gauge(descPeers, s.Peers)
	gauge(descSeeders, s.Seeders)
	gauge(descLeechers, s.Leechers)
	gauge(descConnections, s.Connections)
	counter(descConnsTotal, s.ConnectionsTotal)
	counter(descMessages, s.MessagesIn, "in")
	counter(descMessages, s.MessagesOut, "out")
	counter(descRequests, s.Announces, "announce")
	counter(descRequests, s.Answers, "answer")
	counter(descRequests, s.Scrapes, "scrape")
	counter(descRefused, s.Refused)
	counter(descRelayed, s.OffersRelayed, "offer")
	counter(descRelayed, s.AnswersRelayed, "answer")
}

var _ prometheus.Collector = (*Tracker)(nil)
