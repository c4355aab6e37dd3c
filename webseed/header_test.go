package webseed

import (
	"net/http"
	"testing"
	"time"
)

// TestStoredHeadersReachSteeredClients: a helper serves each file with the site's own end-to-end header
// fields, so that a user's SVG upload sent as an attachment under `CSP: sandbox` stays one on the helper
// too; the helper never takes framing, validators or Set-Cookie from the job.
func TestStoredHeadersReachSteeredClients(t *testing.T) {
	src := newSource(t)
	org := newOrigin(t, http.NotFound)
	env := newHelper(t, "127.0.0.2", Config{})
	job := src.job(org.url)
	job.Peers = []string{src.peer}
	path := src.files[0].path
	fm := job.Files[path]
	fm.Header = http.Header{
		"Content-Security-Policy": {"sandbox"}, "Content-Disposition": {"attachment"},
		"X-Content-Type-Options": {"nosniff"}, "Access-Control-Allow-Origin": {"*"},
		"Set-Cookie": {"session=stolen"}, "Content-Length": {"1"}, "Etag": {`"forged"`},
	}
	job.Files[path] = fm
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	waitReady(t, env.h, job, 45*time.Second)
	resp, body := env.get(t, path)
	if resp.StatusCode != http.StatusOK || int64(len(body)) != int64(len(src.files[0].body)) {
		t.Fatalf("HTTP %d, %d bytes", resp.StatusCode, len(body))
	}
	for k, want := range map[string]string{"Content-Security-Policy": "sandbox", "Content-Disposition": "attachment",
		"X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*", "Set-Cookie": ""} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Etag") == `"forged"` {
		t.Error("the helper took the file's ETag from the job")
	}
}
