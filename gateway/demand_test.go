package gateway

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway/monitor"
)

// TestCrowdIsDemandFromManyClients drives a real gateway from distinct loopback hosts: one client hammering
// the site, and many clients sending HEADs or asking for missing pages, declare no crowd; twenty clients
// each fetching pages as a browser does (about 3 a second) declare one.
func TestCrowdIsDemandFromManyClients(t *testing.T) {
	o := newOrigin(t)
	o.asset("/p.html", "text/html", []byte("<p>hi</p>"))
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}, Monitor: monitor.Config{
		Window: 2 * time.Second, Threshold: 20, ClientBurst: 5, EnterAfter: 300 * time.Millisecond}})
	state := func() monitor.State { return g.Monitor().Status().State }

	// clients asks from n hosts, each once per every, until the gateway is in a crowd or d (and at most 2000
	// requests in all) has passed.
	clients := func(n int, every, d time.Duration, method, path string) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		deadline := time.Now().Add(d)
		for i := range n {
			c := clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
			c.Transport.(*http.Transport).DisableKeepAlives = false
			wg.Go(func() {
				defer c.CloseIdleConnections()
				tick := time.NewTicker(every)
				defer tick.Stop()
				for time.Now().Before(deadline) && state() != monitor.Crowd {
					mu.Lock()
					sent++
					over := sent > 2000
					mu.Unlock()
					if over {
						return
					}
					req, _ := http.NewRequest(method, g.url(path), nil)
					if resp, err := c.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					<-tick.C
				}
			})
		}
		wg.Wait()
	}

	clients(1, 2*time.Millisecond, 3*time.Second, http.MethodGet, "/p.html") // one client, hundreds a second
	if st := g.Monitor().Status(); st.State != monitor.Normal {
		t.Fatalf("one client declared a crowd: %+v", st)
	}
	clients(20, 20*time.Millisecond, 2*time.Second, http.MethodHead, "/p.html")
	clients(20, 20*time.Millisecond, 2*time.Second, http.MethodGet, "/missing")
	if st := g.Monitor().Status(); st.State != monitor.Normal || st.Load.Rate != 0 {
		t.Fatalf("HEADs and 404s counted as demand: %+v", st)
	}
	clients(20, 333*time.Millisecond, 10*time.Second, http.MethodGet, "/p.html")
	if st := g.Monitor().Status(); st.State != monitor.Crowd {
		t.Fatalf("no crowd from 20 browsers: %+v", st)
	}
}
