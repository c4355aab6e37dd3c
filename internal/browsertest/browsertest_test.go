package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDataChannelInDefaultBrowser proves the launcher gives a browser with working WebRTC: two peer
// connections in one page open a data channel and pass a message, with host candidates behind mDNS names.
func TestDataChannelInDefaultBrowser(t *testing.T) {
	got := dataChannel(t, Start(t))
	if got["msg"] != "hello" {
		t.Fatalf("data channel message = %v", got["msg"])
	}
	if got["mdns"] != true {
		t.Fatalf("host candidates are not hidden behind mDNS names: %v", got)
	}
}

// TestNiceHoldsForEveryChromiumThread launches Chromium at niceness 10, as the crowd benchmark does so that
// the servers it measures get the CPU they need, opens a page that runs a data channel (Chromium sets its own
// threads' priorities as it starts them) and reads every thread of every process that uses the browser's
// profile: none may run at a lower niceness. As root, Chromium used to lower its own (to -8 and 0).
func TestNiceHoldsForEveryChromiumThread(t *testing.T) {
	if _, err := exec.LookPath(Path); err != nil {
		t.Fatalf("%s not found: run the suite with bash .ci/test, which installs it", Path)
	}
	dir := t.TempDir()
	ctx, stop, err := Launch(dir, Nice(10))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// Chromium sets its threads' priorities as it starts them: a data channel starts the WebRTC ones.
	if got := dataChannel(t, &Browser{t: t, ctx: ctx}); got["msg"] != "hello" {
		t.Fatalf("data channel message = %v", got["msg"])
	}
	threads := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range procs {
		cmdline, err := os.ReadFile(c)
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		tasks, _ := filepath.Glob(filepath.Join(filepath.Dir(c), "task", "*", "stat"))
		for _, st := range tasks {
			b, err := os.ReadFile(st)
			if err != nil {
				continue // the thread ended
			}
			// stat: pid (comm) state ...; niceness is the 19th field, the 17th after the ")".
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			n, err := strconv.Atoi(f[16])
			if err != nil {
				t.Fatalf("%s: niceness %q: %v", st, f[16], err)
			}
			threads++
			if n < 10 {
				t.Errorf("%s (%s) runs at niceness %d, below the 10 it was launched at", st, strings.Fields(string(b))[1], n)
			}
		}
	}
	if threads == 0 {
		t.Fatal("found no thread of the launched Chromium")
	}
	t.Logf("%d Chromium threads, all at niceness 10 or more", threads)
}

// dataChannel opens a page in b in which two peer connections open a data channel and pass a message over
// it. It returns the message (msg) and whether any host candidate was hidden behind an mDNS name (mdns).
func dataChannel(t *testing.T, b *Browser) map[string]any {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>dc</title>")
	}))
	defer srv.Close()
	p := b.NewPage()
	if err := p.Do(20*time.Second, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := Eval[map[string]any](p, 20*time.Second, `(async () => {
		const a = new RTCPeerConnection(), b = new RTCPeerConnection();
		const cands = [];
		a.onicecandidate = e => { if (e.candidate) { cands.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
		b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
		const dc = a.createDataChannel("x");
		const got = new Promise(res => b.ondatachannel = e => e.channel.onmessage = m => res(m.data));
		dc.onopen = () => dc.send("hello");
		await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
		await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
		return { msg: await got, mdns: cands.some(c => c.includes(".local")) };
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
