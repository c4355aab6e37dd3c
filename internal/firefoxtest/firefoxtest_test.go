package firefoxtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataChannelInDefaultFirefox proves the launcher gives a Firefox with working WebRTC and default
// preferences: two peer connections in one page open a data channel and pass a message, with host
// candidates behind mDNS names; the profile sets no WebRTC preference.
func TestDataChannelInDefaultFirefox(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>dc</title>")
	}))
	defer srv.Close()
	dir := t.TempDir()
	start := time.Now()
	b, err := Launch(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	b.t = t
	defer b.Close()
	t.Logf("%s up in %v", b.Version, time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(b.Version, "firefox/") {
		t.Errorf("version %q", b.Version)
	}
	// puppeteer writes its automation preferences to user.js; none may touch WebRTC.
	prefs, err := os.ReadFile(filepath.Join(dir, "profile", "user.js"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(prefs), "\n") {
		if strings.Contains(line, "media.peerconnection") || strings.Contains(line, "obfuscate") {
			t.Errorf("profile sets a WebRTC preference: %s", line)
		}
	}
	p := b.NewPage()
	if err := p.Goto(60*time.Second, srv.URL); err != nil {
		t.Fatal(err)
	}
	got, err := Eval[map[string]any](p, 30*time.Second, `(async () => {
		const a = new RTCPeerConnection(), b = new RTCPeerConnection();
		const cands = [];
		a.onicecandidate = e => { if (e.candidate && e.candidate.candidate) { cands.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
		b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
		const dc = a.createDataChannel("x");
		const got = new Promise(res => b.ondatachannel = e => e.channel.onmessage = m => res(m.data));
		dc.onopen = () => dc.send("hello");
		await a.setLocalDescription(await a.createOffer()); await b.setRemoteDescription(a.localDescription);
		await b.setLocalDescription(await b.createAnswer()); await a.setRemoteDescription(b.localDescription);
		return { msg: await got, cands };
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if got["msg"] != "hello" {
		t.Fatalf("data channel message = %v", got["msg"])
	}
	cands := fmt.Sprint(got["cands"])
	if !strings.Contains(cands, ".local") {
		t.Fatalf("host candidates are not hidden behind mDNS names: %v", cands)
	}
	t.Logf("candidates: %v", cands)
	if _, err := Eval[int](p, 5*time.Second, `new Promise(() => {})`); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("a promise that never settles: err = %v, want a timeout", err)
	}
}
