package webseed

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// smallJob is a job for a one-file version that nobody seeds: it stays fetching until released.
func smallJob(t *testing.T, seed uint64) Assignment {
	t.Helper()
	v := buildVersion(t, []siteFile{{"/a.bin", "application/octet-stream", testData(100_000, seed)}})
	origin, _ := url.Parse("http://origin.test")
	return Assignment{Site: testSite, Version: v.Name, InfoHash: v.InfoHash, InfoBytes: v.InfoBytes, Origin: origin}
}

func TestAcceptRefuses(t *testing.T) {
	var crowd atomic.Bool
	var load atomic.Int64 // percent
	env := newHelper(t, "127.0.0.2", Config{MaxJobs: 1, InCrowd: crowd.Load,
		Load: func() float64 { return float64(load.Load()) / 100 }})
	h := env.h
	j1, j2 := smallJob(t, 1), smallJob(t, 2)

	// Not what the gateway signed: the infohash does not match the info dictionary.
	bad := j1
	bad.InfoHash[0] ^= 1
	if err := h.Accept(bad); !errors.Is(err, ErrInfoHashMismatch) {
		t.Fatalf("wrong infohash: %v", err)
	}
	bad = j1
	bad.InfoBytes = append([]byte(nil), j1.InfoBytes...)
	bad.InfoBytes[len(bad.InfoBytes)/2] ^= 1
	if err := h.Accept(bad); !errors.Is(err, ErrInfoHashMismatch) {
		t.Fatalf("tampered info: %v", err)
	}

	// Malformed jobs.
	for name, mod := range map[string]func(*Assignment){
		"no origin":     func(j *Assignment) { j.Origin = nil },
		"ftp origin":    func(j *Assignment) { j.Origin = &url.URL{Scheme: "ftp", Host: "x"} },
		"bad site":      func(j *Assignment) { j.Site = "a/b" },
		"no site":       func(j *Assignment) { j.Site = "" },
		"other version": func(j *Assignment) { j.Version = "site-0000" },
		"no info":       func(j *Assignment) { j.InfoBytes, j.InfoHash = nil, metainfo.HashBytes(nil) },
		"bad webseed":   func(j *Assignment) { j.Webseeds = []string{"file:///etc/"} },
	} {
		j := j1
		mod(&j)
		if err := h.Accept(j); !errors.Is(err, ErrBadJob) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Its own crowd first.
	crowd.Store(true)
	if err := h.Accept(j1); !errors.Is(err, ErrInCrowd) {
		t.Fatalf("in a crowd: %v", err)
	}
	if sp := h.Spare(); sp != 0 {
		t.Fatalf("spare %v in a crowd", sp)
	}
	crowd.Store(false)

	// A fully loaded server takes nothing.
	load.Store(100)
	if err := h.Accept(j1); !errors.Is(err, ErrNoCapacity) || h.Spare() != 0 {
		t.Fatalf("fully loaded: %v, spare %v", err, h.Spare())
	}
	load.Store(30)
	if sp := h.Spare(); sp < 0.69 || sp > 0.71 {
		t.Fatalf("spare %v at 30%% load", sp)
	}
	load.Store(0)

	// One job fills MaxJobs 1; asking again for it is fine, another is refused.
	if err := h.Accept(j1); err != nil {
		t.Fatal(err)
	}
	if err := h.Accept(j1); err != nil {
		t.Fatalf("same job again: %v", err)
	}
	if err := h.Accept(j2); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("second job with MaxJobs 1: %v", err)
	}
	if sp := h.Spare(); sp != 0 {
		t.Fatalf("spare %v with MaxJobs taken", sp)
	}
	st, ok := h.State(j1.InfoHash)
	if !ok || st.Phase != PhaseFetching || st.Total == 0 || st.Accepted.IsZero() {
		t.Fatalf("state %+v %v", st, ok)
	}
	if h.Ready(j1.InfoHash) {
		t.Fatal("a job still fetching is ready")
	}
	// (It may be served already: a helper serves from the moment its fetch begins, TestServedWhileFetching.)
	if _, err := os.Stat(filepath.Join(env.dir, j1.InfoHash.HexString())); err != nil {
		t.Fatal(err)
	}

	// Releasing a fetch under way frees the slot and the disk.
	if err := h.Release(j1.InfoHash); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(j1.InfoHash); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("second release: %v", err)
	}
	if ents, _ := os.ReadDir(env.dir); len(ents) != 0 {
		t.Fatalf("data left: %v", ents)
	}
	if env.seeder.Seeding(j1.InfoHash) {
		t.Fatal("released fetch still in the seeder")
	}
	if err := h.Accept(j2); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestAcceptRefusesWhatDoesNotFit(t *testing.T) {
	j := smallJob(t, 1)
	env := newHelper(t, "127.0.0.2", Config{MaxBytes: 50_000})
	if err := env.h.Accept(j); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("100 kB into 50 kB: %v", err)
	}
}

// TestFetchFailsThenRetries: a fetch that cannot complete fails after FetchTimeout and leaves nothing on disk;
// the same job accepted again starts over.
func TestFetchFailsThenRetries(t *testing.T) {
	env := newHelper(t, "127.0.0.2", Config{FetchTimeout: 200 * time.Millisecond})
	j := smallJob(t, 1)
	j.Peers = []string{"127.0.0.1:1"} // nobody there
	if err := env.h.Accept(j); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := env.h.Wait(ctx, j.InfoHash)
	if err != nil || st.Phase != PhaseFailed || st.Err == nil {
		t.Fatalf("state %+v, %v", st, err)
	}
	if ents, _ := os.ReadDir(env.dir); len(ents) != 0 {
		t.Fatalf("data left after a failed fetch: %v", ents)
	}
	if sp := env.h.Spare(); sp != 1 {
		t.Fatalf("a failed job holds capacity: spare %v", sp)
	}
	if jobs := env.h.Jobs(); len(jobs) != 1 || jobs[0].Phase != PhaseFailed {
		t.Fatalf("jobs %+v", jobs)
	}
	if err := env.h.Accept(j); err != nil {
		t.Fatal(err)
	}
	if st, _ := env.h.State(j.InfoHash); st.Phase != PhaseFetching {
		t.Fatalf("accepted again: %+v", st)
	}
	if _, err := env.h.Wait(ctx, metainfo.Hash{}); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("wait for nothing: %v", err)
	}
}

// TestNewRemovesStaleJobs: job directories from an earlier run go; anything else stays.
func TestNewRemovesStaleJobs(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "0123456789abcdef0123456789abcdef01234567", "v", "f")
	other := filepath.Join(dir, "keep", "f")
	for _, p := range []string{stale, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newHelper(t, "127.0.0.2", Config{DataDir: dir})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale job data: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("other data: %v", err)
	}
	if _, err := New(Config{DataDir: dir}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("no seeder: %v", err)
	}
}

// TestFetchedFileMustMatchSHA256: a version whose pieces verify but whose file differs from the SHA-256 the
// job gave (the manifest's) fails, and nothing of it is served, seeded or kept.
func TestFetchedFileMustMatchSHA256(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	env := newHelper(t, "127.0.0.2", Config{})
	origin, _ := url.Parse("http://origin.test")
	job := src.job(origin)
	job.Peers = []string{src.peer}
	fm := job.Files["/js/app.js"]
	fm.SHA256[0] ^= 1
	job.Files["/js/app.js"] = fm
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := env.h.Wait(ctx, job.InfoHash)
	if err != nil || st.Phase != PhaseFailed || !errors.Is(st.Err, ErrVerify) {
		t.Fatalf("state %+v, %v", st, err)
	}
	if env.seeder.Seeding(job.InfoHash) || env.h.Serves(testSite) {
		t.Fatal("a version that failed its check is seeded or served")
	}
	if ents, _ := os.ReadDir(env.dir); len(ents) != 0 {
		t.Fatalf("data left: %v", ents)
	}
}
