package steer

import (
	"math/rand/v2"
	"net/netip"
	"sync"
)

// weightedOrder draws up to k addresses from set without replacement, each draw choosing among the
// remaining addresses with probability proportional to weight. So the first address is a with probability
// a.Weight/sum(Weights), and a client that tries the addresses in order spreads its load by weight.
// Weights must be positive. It costs O(len(set)·k).
func weightedOrder(r *rand.Rand, set []Weighted, k int) []netip.Addr {
	k = min(k, len(set))
	if k <= 0 {
		return nil
	}
	rest := make([]Weighted, len(set))
	copy(rest, set)
	var total uint64
	for _, w := range rest {
		total += uint64(w.Weight)
	}
	out := make([]netip.Addr, 0, k)
	for len(out) < k {
		x := r.Uint64N(total)
		i := 0
		for ; i < len(rest)-1; i++ {
			if x < uint64(rest[i].Weight) {
				break
			}
			x -= uint64(rest[i].Weight)
		}
		out = append(out, rest[i].Addr)
		total -= uint64(rest[i].Weight)
		rest = append(rest[:i], rest[i+1:]...)
	}
	return out
}

// picker makes weightedOrder safe for the server's concurrent handlers.
type picker struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newPicker(src rand.Source) *picker {
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	return &picker{r: rand.New(src)}
}

func (p *picker) pick(set []Weighted, k int) []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return weightedOrder(p.r, set, k)
}
