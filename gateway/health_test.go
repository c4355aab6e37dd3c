package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/steer"
)

// withdrawals is a steer.Publisher that records the addresses withdrawn.
type withdrawals struct {
	mu    sync.Mutex
	addrs []netip.Addr
}

func (w *withdrawals) Set(context.Context, string, []steer.Weighted) error { return nil }
func (w *withdrawals) TTL() time.Duration                                  { return time.Second }
func (w *withdrawals) AddTXT(context.Context, string, string) error        { return nil }
func (w *withdrawals) RemoveTXT(context.Context, string, string) error     { return nil }
func (w *withdrawals) Withdraw(_ context.Context, _ string, addrs ...netip.Addr) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addrs = append(w.addrs, addrs...)
	return nil
}
func (w *withdrawals) has(a netip.Addr) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.addrs, a)
}

// fakeHelper serves a version's files as a helper would, after delay, or wrong bytes when corrupt is set.
type fakeHelper struct {
	*httptest.Server
	delay   atomic.Int64 // nanoseconds
	corrupt atomic.Bool
}

func newFakeHelper(t *testing.T, v *catalog.Version) *fakeHelper {
	h := &fakeHelper{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(h.delay.Load())):
		case <-r.Context().Done():
			return
		}
		f, _, err := v.Open(r.URL.Path[1:])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		if h.corrupt.Load() {
			b = bytes.Repeat([]byte{0xee}, len(b))
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(h.Close)
	return h
}

// TestHealthChecks: a ready helper that answers late is withdrawn only after HealthStrikes late checks in a
// row (an answer in time in between starts the count again); one that answers with wrong bytes, or refuses
// the connection, is withdrawn at the first check.
func TestHealthChecks(t *testing.T) {
	dir := t.TempDir()
	cat, err := catalog.Open(catalog.Config{Dir: filepath.Join(dir, "catalog"), MinSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	asset := filepath.Join(dir, "photo.bin")
	if err := os.WriteFile(asset, bytes.Repeat([]byte("swarmgate "), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.AddFile("/photo.bin", "application/octet-stream", asset); err != nil {
		t.Fatal(err)
	}
	v, _, err := cat.Build()
	if err != nil || v == nil {
		t.Fatalf("building a version: %v", err)
	}

	// Long enough that an answer "in time" is in time on a loaded 2-core CI machine (at 200 ms one was not).
	const timeout = time.Second
	dns := &withdrawals{}
	c := &coordinator{site: "launch.example.test", cfg: FederationConfig{HealthTimeout: timeout}, dns: dns, log: testlog.New(t, slog.LevelInfo),
		http: &http.Client{Timeout: timeout}, helpers: map[string]*helperState{}}
	helper := func(name string, h *httptest.Server) *helperState {
		st := &helperState{member: federation.Member{Name: name}, state: helperReady, version: v,
			addr: netip.MustParseAddrPort(h.Listener.Addr().String())}
		c.helpers[name] = st
		return st
	}
	state := func(h *helperState) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return h.state
	}
	ctx := context.Background()

	slow := newFakeHelper(t, v)
	beta := helper("beta", slow.Server)
	check := func(step string, late bool, want string) {
		t.Helper()
		slow.delay.Store(0)
		if late {
			slow.delay.Store(int64(3 * timeout))
		}
		c.checkHealth(ctx)
		if got := state(beta); got != want {
			t.Fatalf("%s: beta is %s, want %s", step, got, want)
		}
	}
	check("in time", false, helperReady)
	for i := 1; i < HealthStrikes; i++ {
		check("late", true, helperReady)
	}
	check("in time again", false, helperReady)
	for i := 1; i < HealthStrikes; i++ {
		check("late after an answer in time", true, helperReady)
	}
	if dns.has(beta.addr.Addr()) {
		t.Fatal("beta withdrawn before its last strike")
	}
	check("late the last time", true, helperFailed)
	if !dns.has(beta.addr.Addr()) {
		t.Fatal("beta failed but was not withdrawn from DNS")
	}

	wrong := newFakeHelper(t, v)
	wrong.corrupt.Store(true)
	gamma := helper("gamma", wrong.Server)
	gone := newFakeHelper(t, v)
	delta := helper("delta", gone.Server)
	gone.Close() // refuses connections from now on
	c.checkHealth(ctx)
	for _, h := range []*helperState{gamma, delta} {
		if st := state(h); st != helperFailed || !dns.has(h.addr.Addr()) {
			t.Errorf("%s: %s after one check (withdrawn: %v), want failed and withdrawn", h.member.Name, st, dns.has(h.addr.Addr()))
		}
	}
}
