package gateway

import (
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/web"
)

// Snapshot is the gateway's state for the dashboard and the status API.
func (s *Server) Snapshot() web.Snapshot {
	st := s.mon.Status()
	snap := web.Snapshot{
		Time: s.mon.Now(), Site: s.cfg.Site.Name, State: st.State.String(), StateSince: st.Since, Rate: st.Load.Rate,
		Threshold: st.Threshold, OriginLatencyMs: float64(st.Load.OriginLatency.Microseconds()) / 1000,
		Bytes: s.counters.snapshot(), Swarms: []web.Swarm{}, Helpers: []web.Helper{}, DNS: []web.DNSAnswer{},
	}
	var total int64
	for _, n := range snap.Bytes {
		total += n
	}
	if total > 0 {
		snap.Offload = 1 - float64(snap.Bytes[SourceOrigin])/float64(total)
	}
	helpers, _ := s.Helpers()
	for _, h := range helpers {
		snap.Helpers = append(snap.Helpers, web.Helper{Name: h.Name, State: h.State, Healthy: h.Healthy, Address: h.Address, Fetched: h.Fetched})
	}
	if pub := s.Published(); len(pub) > 0 {
		ans := web.DNSAnswer{Name: s.cfg.Site.Name, TTL: int(s.cfg.DNS.TTL().Seconds())}
		for _, a := range pub {
			ans.Addrs = append(ans.Addrs, a.String())
		}
		snap.DNS = append(snap.DNS, ans)
	}
	ts := s.tracker.Stats()
	snap.Tracker = web.TrackerStats{Connections: ts.Connections, Peers: ts.Peers, Swarms: ts.Swarms}
	cur := s.cat.Current()
	for _, v := range s.cat.Versions() {
		complete, incomplete := s.tracker.SwarmCounts(tracker.ID(v.InfoHash))
		snap.Swarms = append(snap.Swarms, web.Swarm{Version: v.Name, InfoHash: v.InfoHash.HexString(), Files: len(v.Files),
			Bytes: v.Info.TotalLength(), Seeders: complete, Leechers: incomplete, Current: v == cur})
	}
	return snap
}
