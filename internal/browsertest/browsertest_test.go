package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDataChannelInDefaultBrowser proves the launcher gives a browser with working WebRTC: two peer
// connections in one page open a data channel and pass a message, with host candidates behind mDNS names.
func TestDataChannelInDefaultBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>dc</title>")
	}))
	defer srv.Close()
	p := Start(t).NewPage()
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
	if got["msg"] != "hello" {
		t.Fatalf("data channel message = %v", got["msg"])
	}
	if got["mdns"] != true {
		t.Fatalf("host candidates are not hidden behind mDNS names: %v", got)
	}
}
