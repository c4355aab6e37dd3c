package webseed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/uplink"
)

// TestServedWhileFetching: a helper serves its version from the moment its fetch begins, not once it holds
// all of it. Its only source sends 1 MB/s, ten seconds for the version's 10 MB; the piece a challenge names,
// a steered client's file and a webseed range come verified while the fetch goes on, which then completes as
// before. (How soon they come depends on the requests anacrolix already has out to the source: it cancels
// none of them for a reader's pieces.)
func TestServedWhileFetching(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	link, err := uplink.New(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := seeder.New(seeder.Config{DataDir: t.TempDir(), ListenAddr: "127.0.0.4:0", Logger: testLogger(t), Shape: link.Conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	if err := slow.AddTorrent(src.v.MetaInfo(nil, nil), src.v.Dir); err != nil {
		t.Fatal(err)
	}
	org := newOrigin(t, http.NotFound)
	env := newHelper(t, "127.0.0.2", Config{})
	job := src.job(org.url)
	job.Peers = []string{fmt.Sprintf("127.0.0.4:%d", slow.ListenPort())}
	start := time.Now()
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last := src.v.Info.NumPieces() - 1
	st, err := env.h.WaitServed(ctx, job.InfoHash, last)
	if err != nil || st.Phase != PhaseFetching {
		t.Fatalf("WaitServed: %+v, %v; want the job fetching", st, err)
	}
	got, err := seeder.ReadPiece(&src.v.Info, env.dir+"/"+job.InfoHash.HexString(), last)
	want, _ := seeder.ReadPiece(&src.v.Info, src.v.Dir, last)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the challenged piece on disk: %v", err)
	}
	served := time.Since(start)

	// A steered client's file and a webseed range, asked at once: both are answered from the fetch under way
	// (a job not yet ready was not served at all before: 404).
	font, app := src.files[3], src.files[2]
	u := swarmapi.PathSeed + src.v.Name + "/" + escapeComponents([]string{"js", "app.js"})
	type answer struct {
		resp *http.Response
		body []byte
		err  error
		took time.Duration
	}
	get := func(path string, hdr ...string) chan answer {
		c := make(chan answer, 1)
		req, err := http.NewRequest(http.MethodGet, env.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = testSite
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		go func() {
			var a answer
			if a.resp, a.err = env.client.Do(req); a.err == nil {
				a.body, a.err = io.ReadAll(a.resp.Body)
				a.resp.Body.Close()
			}
			a.took = time.Since(start)
			c <- a
		}()
		return c
	}
	answers := []chan answer{get(font.path), get(u, "Range", "bytes=1000-200999")}
	a := <-answers[0]
	if a.err != nil {
		t.Fatalf("GET %s while fetching: %v", font.path, a.err)
	}
	if a.resp.StatusCode != http.StatusOK || !bytes.Equal(a.body, font.body) {
		t.Fatalf("GET %s while fetching: %s, %d bytes of %d", font.path, a.resp.Status, len(a.body), len(font.body))
	}
	if a.resp.Header.Get("ETag") == "" {
		t.Errorf("GET %s while fetching: no ETag, though the job gives the file's sha256", font.path)
	}
	b := <-answers[1]
	if b.err != nil {
		t.Fatalf("webseed range of %s while fetching: %v", u, b.err)
	}
	if b.resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b.body, app.body[1000:201000]) {
		t.Fatalf("webseed range of %s while fetching: %s, %d bytes", u, b.resp.Status, len(b.body))
	}

	st = waitReady(t, env.h, job, 45*time.Second)
	t.Logf("served %v after Accept, the file answered at %v and the range at %v, ready at %v (%d bytes at 1 MB/s)",
		served.Round(time.Millisecond), a.took.Round(time.Millisecond), b.took.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), st.Total)
	checkOnDisk(t, env, src, job)
	resp, body := env.get(t, font.path)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, font.body) {
		t.Fatalf("GET %s once ready: %s", font.path, resp.Status)
	}
}
