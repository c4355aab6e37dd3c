package seeder

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

// TestFetchTakesPiecesFromBrowsers: a helper fetching a site version joins the site's swarm on its tracker as
// a leecher, so the site's visitors' browsers give it pieces over WebRTC. Here the only source is a browser:
// the first seeder, which the browser downloads from, never offers and so can never connect to the fetching
// seeder (both only answer offers), and Fetch is given no peers and no webseeds.
func TestFetchTakesPiecesFromBrowsers(t *testing.T) {
	env := newEnv(t)
	dir := t.TempDir()
	mi, data := makeTorrent(t, dir, "asset.bin", 3<<20)
	site := startSeeder(t, env.wsURL)
	if err := site.AddTorrent(mi, dir); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the site's seeder in the swarm", func() bool { return env.trk.Stats().Seeders == 1 })

	helper := startSeeder(t)
	fetchDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fetched := make(chan error, 1)
	go func() { fetched <- helper.Fetch(ctx, mi, fetchDir, Sources{Trackers: []string{env.wsURL}}, nil) }()
	testutil.Eventually(t, 10*time.Second, "the fetching seeder in the swarm as a leecher", func() bool {
		st := env.trk.Stats()
		return st.Seeders == 1 && st.Leechers == 1
	})

	// A visitor: its offers reach both seeders; it downloads from the site's and shares with the helper.
	magnet := metainfo.Magnet{InfoHash: mi.HashInfoBytes(), Trackers: []string{env.wsURL}, DisplayName: "asset.bin"}.String()
	p := browsertest.Start(t).NewPage()
	if err := p.Do(20*time.Second, chromedp.Navigate(env.srv.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](p, 30*time.Second, `(async () => {
		const { default: WebTorrent } = await import('/webtorrent.min.js');
		window.client = new WebTorrent();
		const torrent = window.client.add(`+jsString(magnet)+`);
		await new Promise((resolve, reject) => { torrent.on('done', resolve); torrent.on('error', reject); });
		return true;
	})()`); err != nil {
		t.Fatalf("browser download: %v", err)
	}
	select {
	case err := <-fetched:
		if err != nil {
			t.Fatalf("Fetch: %v (helper %+v)", err, helper.Stats())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Fetch not done a minute after the browser completed (helper %+v)", helper.Stats())
	}
	got, err := os.ReadFile(filepath.Join(fetchDir, "asset.bin"))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("fetched file: %d bytes, %v; want the torrent's %d", len(got), err, len(data))
	}
	if !helper.Seeding(mi.HashInfoBytes()) {
		t.Fatal("the helper does not seed what it fetched")
	}
	// Complete, it stays in the swarm as a seeder ("completed" announced).
	testutil.Eventually(t, 10*time.Second, "the helper announced as a seeder", func() bool {
		st := env.trk.Stats()
		return st.Seeders == 3 && st.Leechers == 0 // the site's seeder, the browser, the helper
	})
}
