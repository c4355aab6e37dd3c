package webseed

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// TestJobLease: a job ends at its Until (the helper stops serving the site, then deletes the job) unless its
// requester renews it; only the requester renews or releases it, and nobody else gets a job for its site or
// version while it is held.
func TestJobLease(t *testing.T) {
	org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("origin")) })
	src := newSource(t)
	env := newHelper(t, "127.0.0.2", Config{})
	h := env.h

	j := src.job(org.url)
	j.Peers, j.Requester = []string{src.peer}, "alpha"
	past := j
	past.Until = time.Now().Add(-time.Second)
	if err := h.Accept(past); !errors.Is(err, ErrBadJob) {
		t.Fatalf("a job whose Until has passed: %v, want %v", err, ErrBadJob)
	}
	j.Until = time.Now().Add(time.Minute) // the fetch's time; shortened once ready
	if err := h.Accept(j); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h, j, 30*time.Second)
	const lease = time.Second
	j.Until = time.Now().Add(lease)
	shorten(h, j)
	if resp, _ := env.get(t, "/js/app.js"); resp.StatusCode != http.StatusOK {
		t.Fatalf("serving the site: %d", resp.StatusCode)
	}

	// Another requester gets neither the version nor the site, and may not renew or release the job.
	other := j
	other.Requester = "mallory"
	if err := h.Accept(other); !errors.Is(err, ErrTaken) {
		t.Errorf("the same version for another requester: %v, want %v", err, ErrTaken)
	}
	sameSite := smallJob(t, 7)
	sameSite.Requester = "mallory"
	if err := h.Accept(sameSite); !errors.Is(err, ErrTaken) {
		t.Errorf("the same site for another requester: %v, want %v", err, ErrTaken)
	}
	if err := h.RenewBy("mallory", j.InfoHash, time.Now().Add(time.Hour)); !errors.Is(err, ErrNotRequester) {
		t.Errorf("renewal by another: %v, want %v", err, ErrNotRequester)
	}
	if err := h.ReleaseBy("mallory", j.InfoHash); !errors.Is(err, ErrNotRequester) {
		t.Errorf("release by another: %v, want %v", err, ErrNotRequester)
	}
	if !h.Ready(j.InfoHash) {
		t.Fatal("the job ended after a refused release")
	}

	// The requester renews: the job outlives its first Until.
	if err := h.RenewBy("alpha", j.InfoHash, j.Until.Add(lease)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*lease, "the first Until to pass", func() bool { return time.Now().After(j.Until.Add(200 * time.Millisecond)) })
	if !h.Serves(testSite) {
		t.Fatal("a renewed job stopped at its first Until")
	}
	// Then its time runs out: the site is no longer served and the job is gone.
	testutil.Eventually(t, 3*lease, "the job to expire", func() bool { _, held := h.State(j.InfoHash); return !held })
	if h.Serves(testSite) {
		t.Error("an expired job is still served")
	}
	if resp, _ := env.get(t, "/js/app.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the site after its job expired: %d, want 404", resp.StatusCode)
	}
	if err := h.RenewBy("alpha", j.InfoHash, time.Now().Add(time.Hour)); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("renewing an expired job: %v, want %v", err, ErrUnknownJob)
	}

	// Now that it is gone, another requester may have the site; its requester releases it.
	if err := h.Accept(sameSite); err != nil {
		t.Fatalf("the site for another requester once free: %v", err)
	}
	if err := h.ReleaseBy("mallory", sameSite.InfoHash); err != nil {
		t.Fatal(err)
	}
}

// TestOriginNeedsAllowPrivate: the helper's own transport reaches an origin on loopback only for a job that
// allows private addresses; otherwise the origin is never asked.
func TestOriginNeedsAllowPrivate(t *testing.T) {
	org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("internal")) })
	src := newSource(t)
	env := newHelper(t, "127.0.0.2", Config{})
	for _, allow := range []bool{false, true} {
		j := src.job(org.url)
		j.Peers, j.AllowPrivate = []string{src.peer}, allow
		if err := env.h.Accept(j); err != nil {
			t.Fatal(err)
		}
		waitReady(t, env.h, j, 30*time.Second)
		resp, body := env.get(t, "/secret")
		want := http.StatusBadGateway
		if allow {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("allowPrivate %v: status %d (%q), want %d", allow, resp.StatusCode, body, want)
		}
		if n := org.count("/secret"); n != map[bool]int{false: 0, true: 1}[allow] {
			t.Errorf("allowPrivate %v: the origin was asked %d times", allow, n)
		}
		if err := env.h.Release(j.InfoHash); err != nil {
			t.Fatal(err)
		}
	}
}

// shorten sets a held job's Until to j.Until (RenewBy only moves it later), as if it had been accepted so.
func shorten(h *Helper, j Assignment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	jb := h.jobs[j.InfoHash]
	jb.until = j.Until
	jb.expiry.Reset(time.Until(j.Until))
}
