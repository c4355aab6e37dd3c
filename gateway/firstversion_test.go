package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestNoVersionYetIsNoError: a new gateway has no site version until its site is visited; a visitor's page
// with the loader then logs no error (the manifest answers 204 No Content, which the loader takes as nothing to
// swarm), and the page loads as it would without swarmgate.
func TestNoVersionYetIsNoError(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>new</title><p id="p">hello</p><script src="/.swarm/loader.js" async></script>`))
	}))
	t.Cleanup(origin.Close)
	ou, err := url.Parse(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: ou}})
	resp, err := http.Get("http://" + g.Addr().String() + swarmapi.PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("manifest before the first version: %d, want 204", resp.StatusCode)
	}

	p := browsertest.Start(t).NewPage()
	if err := p.Do(30*time.Second, chromedp.Navigate("http://"+g.Addr().String()+"/")); err != nil {
		t.Fatal(err)
	}
	// Wait until the loader has asked for the manifest and had its answer.
	asked, err := browsertest.Eval[bool](p, 30*time.Second, `new Promise(done => {
		const check = () => performance.getEntriesByType('resource').some(e => e.name.endsWith('/.swarm/manifest.json') && e.responseEnd > 0)
			? done(true) : setTimeout(check, 50)
		check()
	})`)
	if err != nil || !asked {
		t.Fatalf("the loader never asked for the manifest: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the loader's handling of the answer, and the console's delivery
	for _, line := range p.Console() {
		if strings.Contains(strings.ToLower(line), "error") || strings.Contains(line, "404") {
			t.Errorf("console: %s", line)
		}
	}
	if text, err := browsertest.Eval[string](p, 5*time.Second, `document.getElementById('p').textContent`); err != nil || text != "hello" {
		t.Errorf("page text %q, %v", text, err)
	}
}
