package webseed

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Traffic counts requests and the response body bytes sent for them.
type Traffic struct {
	Requests int64
	Bytes    int64
}

// Served is traffic by kind.
type Served struct {
	// Steered: version files served to clients that reached this server by the site's name (DNS steering).
	Steered Traffic
	// Webseed: BEP 19 ranges served to BitTorrent clients.
	Webseed Traffic
	// Proxied: answers for the site's paths that no version holds, from the origin or the cache.
	Proxied Traffic
}

// Stats are the helper's counters since New.
type Stats struct {
	Jobs  int // jobs held, whatever their phase
	Ready int // jobs ready
	// Served counts what the helper served, released jobs included.
	Served Served
	// OriginBytes is what the helper read from origins for proxied requests.
	OriginBytes int64
	// CacheHits are proxied requests answered from the cache (or from a fill another request made);
	// CacheMisses are those that went to the origin to fill it.
	CacheHits, CacheMisses int64
	// CacheBytes and CacheEntries are what the cache holds now.
	CacheBytes   int64
	CacheEntries int
}

// Stats returns the current counters.
func (h *Helper) Stats() Stats {
	st := Stats{Served: h.stats.snapshot(), OriginBytes: h.origin.Load()}
	st.CacheHits, st.CacheMisses, st.CacheBytes, st.CacheEntries = h.cache.stats()
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Jobs = len(h.jobs)
	for _, j := range h.jobs {
		if j.phase == PhaseReady {
			st.Ready++
		}
	}
	return st
}

type traffic struct{ requests, bytes atomic.Int64 }

func (t *traffic) add(n int64) {
	t.requests.Add(1)
	t.bytes.Add(n)
}

func (t *traffic) snapshot() Traffic {
	return Traffic{Requests: t.requests.Load(), Bytes: t.bytes.Load()}
}

// counters are traffic by kind.
type counters struct{ steered, webseed, proxied traffic }

func (c *counters) snapshot() Served {
	return Served{Steered: c.steered.snapshot(), Webseed: c.webseed.snapshot(), Proxied: c.proxied.snapshot()}
}

// countingWriter counts the body bytes written through it. It keeps the ResponseWriter's ReaderFrom (so
// files still go out with sendfile) and lets http.ResponseController reach the rest.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(src)
		c.n += n
		return n, err
	}
	return io.Copy(writerOnly{c}, src)
}

// Flush is for handlers that assert http.Flusher rather than use a ResponseController.
func (c *countingWriter) Flush() { _ = http.NewResponseController(c.ResponseWriter).Flush() }

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type writerOnly struct{ io.Writer }
