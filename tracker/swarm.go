package tracker

import (
	"math/rand/v2"
	"net/netip"
)

// peer is one client in one swarm. All fields are guarded by Tracker.mu.
type peer struct {
	ih     ID // the swarm's infohash
	id     ID
	conn   *conn
	seeder bool
	paused bool // paused peers stay counted but are sent no offers: they will not connect
	idx    int  // position in swarm.list
}

// swarm is the set of peers sharing one infohash. Guarded by Tracker.mu.
type swarm struct {
	peers      map[ID]*peer
	list       []*peer // the same peers, for uniform random choice
	seeders    int
	downloaded int64        // completed events seen
	creator    netip.Prefix // the client that started it, charged against Config.MaxSwarmsPerClient
}

func (p *peer) key() peerKey { return peerKey{p.ih, p.id} }

// lookup returns the swarm's peer of that ID, or nil; s may be nil.
func (s *swarm) lookup(id ID) *peer {
	if s == nil {
		return nil
	}
	return s.peers[id]
}

func newSwarm() *swarm { return &swarm{peers: make(map[ID]*peer)} }

func (s *swarm) add(p *peer) {
	p.idx = len(s.list)
	s.list = append(s.list, p)
	s.peers[p.id] = p
}

func (s *swarm) remove(p *peer) {
	last := s.list[len(s.list)-1]
	s.list[p.idx] = last
	last.idx = p.idx
	s.list[len(s.list)-1] = nil
	s.list = s.list[:len(s.list)-1]
	delete(s.peers, p.id)
	if p.seeder {
		s.seeders--
	}
}

func (s *swarm) counts() (complete, incomplete int) { return s.seeders, len(s.list) - s.seeders }

// setSeeder moves p between seeders and leechers.
func (s *swarm) setSeeder(p *peer, seeder bool) {
	if p.seeder == seeder {
		return
	}
	p.seeder = seeder
	if seeder {
		s.seeders++
	} else {
		s.seeders--
	}
}

// eligible reports whether an offer from `from` may go to p. A seeder's offers go only to leechers: two seeders
// have nothing to exchange.
func eligible(from, p *peer) bool {
	return p != from && !p.paused && !(from.seeder && p.seeder)
}

// pickScan bounds the peers pick's scan looks at for each offer wanted, beyond pickScanMin: it runs under
// Tracker.mu at every announce, and a client could otherwise fill a swarm with peers no offer may go to (paused,
// or seeders for a seeder's offers) and have each of its announces walk all of them.
const (
	pickScan    = 16
	pickScanMin = 64
)

// pick chooses up to n distinct random peers that may receive offers from `from`, appending them to out. In a
// large swarm where such peers are few it may find fewer than there are.
func (s *swarm) pick(from *peer, n int, out []*peer) []*peer {
	if n <= 0 || len(s.list) <= 1 {
		return out
	}
	chosen := func(p *peer) bool {
		for _, q := range out {
			if q == p {
				return true
			}
		}
		return false
	}
	// Random probes find peers quickly in a large swarm; a scan from a random start finishes the job in a
	// small or mostly ineligible one.
	for tries := 0; tries < 4*n && len(out) < n; tries++ {
		p := s.list[rand.IntN(len(s.list))]
		if eligible(from, p) && !chosen(p) {
			out = append(out, p)
		}
	}
	if len(out) < n {
		start := rand.IntN(len(s.list))
		for i := 0; i < min(len(s.list), pickScan*n+pickScanMin) && len(out) < n; i++ {
			p := s.list[(start+i)%len(s.list)]
			if eligible(from, p) && !chosen(p) {
				out = append(out, p)
			}
		}
	}
	return out
}
