package gateway_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// memberClient is a federation client speaking as member name: a test sends what that member could send.
func memberClient(t *testing.T, fed *federation.Federation, keys map[string]ed25519.PrivateKey, name string) *federation.Client {
	t.Helper()
	v, err := federation.NewVerifier(federation.VerifierConfig{Federation: fed, Self: name})
	if err != nil {
		t.Fatal(err)
	}
	return &federation.Client{Key: keys[name], Name: name, Verifier: v}
}

// refusedWith reports whether err is the member's refusal with this HTTP status.
func refusedWith(err error, status int) bool {
	var r *federation.RefusedError
	return errors.As(err, &r) && r.Status == status
}

// serving reports whether the server at base answers path with 200 for Host: host.
func serving(t *testing.T, base, host, path string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// fakeMember is a member (gamma, on 127.0.0.3) run by the test: its job for a version is alpha's, with the
// peers extra added, or a redirect to alpha's when redirect is set; anything else is its "origin".
type fakeMember struct {
	url      string
	alphaURL string
	extra    []string
	redirect atomic.Bool
}

func (f *fakeMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ih, ok := cutPrefix(r.URL.Path, swarmapi.PathJob)
	if !ok {
		fmt.Fprint(w, "gamma's origin")
		return
	}
	if f.redirect.Load() {
		http.Redirect(w, r, f.alphaURL+swarmapi.PathJob+ih, http.StatusFound)
		return
	}
	resp, err := http.Get(f.alphaURL + swarmapi.PathJob + ih)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var job swarmapi.Job
	if err := json.NewDecoder(resp.Body).Decode(&job); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	job.Peers = append(job.Peers, f.extra...)
	json.NewEncoder(w).Encode(job)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return "", false
	}
	return s[len(p):], true
}

// TestHelpRequestBelongsToItsSender: a member may ask for help only with a site the federation file lists for
// it, never with the helper's own names or a bare IP, and only with origin, webseed and tracker URLs of its
// own, within a bounded lease; a job's peers outside the federation are never dialled, and a redirected job
// is not followed. Only the member that asked may release the job. gamma is a member run by the test; beta a
// real helper; alpha a real site whose content gamma passes off as its own.
func TestHelpRequestBelongsToItsSender(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	const betaSite = "beta-own.example.test" // beta's Config.SiteName, which the file lists for gamma
	keys, fed := newFederationWith(t, port, func(i int, m map[string]any) {
		if i == 2 {
			m["sites"] = []string{"gamma.example.test", betaSite}
		}
	}, "alpha", "beta", "gamma")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	alphaURL, betaURL, gammaURL := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.2:%d", port),
		fmt.Sprintf("http://127.0.0.3:%d", port)
	fedCfg := func(n string) *gateway.FederationConfig {
		return &gateway.FederationConfig{Key: keys[n], Members: fed, HealthInterval: 300 * time.Millisecond}
	}
	alpha := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: "127.0.0.1:" + fmt.Sprint(port), PeerListen: "127.0.0.1:0"},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: fedCfg("alpha")})
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: "127.0.0.2:" + fmt.Sprint(port), PeerListen: "127.0.0.2:0"},
		Site:       gateway.SiteConfig{Name: betaSite},
		Federation: fedCfg("beta"),
	})

	// A listener no job may send beta's seeder to: not an address of any member.
	trap, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	var trapped atomic.Int32
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped.Add(1)
			c.Close()
		}
	}()
	gamma := &fakeMember{url: gammaURL, alphaURL: alphaURL, extra: []string{trap.Addr().String()}}
	gln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.3:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	gsrv := &http.Server{Handler: gamma}
	go gsrv.Serve(gln)
	defer gsrv.Close()

	testutil.Eventually(t, 10*time.Second, "alpha's first version", func() bool { return alpha.g.Catalog().Current() != nil })
	v := alpha.g.Catalog().Current()
	client := memberClient(t, fed, keys, "gamma")
	ctx := context.Background()
	request := func(edit func(r *federation.HelpRequest)) error {
		r := &federation.HelpRequest{Site: "gamma.example.test", Version: v.Name, InfoHash: v.InfoHash.HexString(),
			Origin: gammaURL, Webseeds: []string{gammaURL + swarmapi.PathSeed}, Tracker: "ws://127.0.0.3:" + fmt.Sprint(port) + swarmapi.PathAnnounce,
			Capacity: 10, Until: time.Now().Add(10 * time.Minute), Challenge: hex.EncodeToString(make([]byte, 32))}
		if edit != nil {
			edit(r)
		}
		return client.Send(ctx, betaURL, federation.KindHelpRequest, r, &federation.Accept{})
	}

	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "internal secret") }))
	defer internal.Close()
	for name, tc := range map[string]struct {
		edit   func(r *federation.HelpRequest)
		status int
	}{
		"alpha's site":               {func(r *federation.HelpRequest) { r.Site = siteName }, http.StatusForbidden},
		"beta's site in the file":    {func(r *federation.HelpRequest) { r.Site = "beta.example.test" }, http.StatusForbidden},
		"beta's own configured site": {func(r *federation.HelpRequest) { r.Site = betaSite }, http.StatusForbidden},
		"a bare IP":                  {func(r *federation.HelpRequest) { r.Site = "127.0.0.2" }, http.StatusForbidden},
		"alpha as origin":            {func(r *federation.HelpRequest) { r.Origin = alphaURL }, http.StatusForbidden},
		"an internal origin":         {func(r *federation.HelpRequest) { r.Origin = internal.URL }, http.StatusForbidden},
		"a named internal origin":    {func(r *federation.HelpRequest) { r.Origin = "http://localhost:" + fmt.Sprint(port) }, http.StatusForbidden},
		"alpha as webseed":           {func(r *federation.HelpRequest) { r.Webseeds = append(r.Webseeds, alphaURL+swarmapi.PathSeed) }, http.StatusForbidden},
		"alpha as tracker": {func(r *federation.HelpRequest) {
			r.Tracker = "ws://127.0.0.1:" + fmt.Sprint(port) + swarmapi.PathAnnounce
		}, http.StatusForbidden},
		"until past":    {func(r *federation.HelpRequest) { r.Until = time.Now().Add(-time.Minute) }, http.StatusBadRequest},
		"until too far": {func(r *federation.HelpRequest) { r.Until = time.Now().Add(2 * time.Hour) }, http.StatusBadRequest},
	} {
		if err := request(tc.edit); !refusedWith(err, tc.status) {
			t.Errorf("%s: %v; want refused with %d", name, err, tc.status)
		}
	}

	// A job that redirects elsewhere is not followed: beta declines.
	gamma.redirect.Store(true)
	if err := request(nil); !errors.Is(err, federation.ErrDeclined) {
		t.Errorf("a redirected job: %v; want a decline", err)
	}
	gamma.redirect.Store(false)

	// gamma's own site, with its own URLs: beta helps, from alpha's seeder (a member's listed address) but
	// never from the address gamma slipped into the job.
	if err := request(nil); err != nil {
		t.Fatalf("gamma's own site: %v", err)
	}
	testutil.Eventually(t, 30*time.Second, "beta serving gamma's site", func() bool {
		return serving(t, betaURL, "gamma.example.test", examplesite.ImagePNG)
	})
	if n := trapped.Load(); n != 0 {
		t.Errorf("beta's seeder dialled an address outside the federation %d times", n)
	}
	if serving(t, betaURL, siteName, examplesite.ImagePNG) || serving(t, betaURL, betaSite, examplesite.ImagePNG) {
		t.Error("beta serves gamma's content under another name")
	}

	// alpha did not ask: it may not release gamma's job. gamma may.
	release := &federation.Release{Site: "gamma.example.test", InfoHash: v.InfoHash.HexString()}
	if err := memberClient(t, fed, keys, "alpha").Send(ctx, betaURL, federation.KindRelease, release, nil); !refusedWith(err, http.StatusForbidden) {
		t.Errorf("release by alpha: %v; want 403", err)
	}
	if !serving(t, betaURL, "gamma.example.test", examplesite.ImagePNG) {
		t.Fatal("beta stopped serving after alpha's release")
	}
	if err := client.Send(ctx, betaURL, federation.KindRelease, release, nil); err != nil {
		t.Fatalf("release by gamma: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "beta to stop serving gamma's site", func() bool {
		return !serving(t, betaURL, "gamma.example.test", examplesite.ImagePNG)
	})
}

// TestHelpRequestNeedsAllowPrivate: without allowPrivate, a member on loopback gets no help: its own URLs
// are loopback addresses.
func TestHelpRequestNeedsAllowPrivate(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2")
	keys, fed := newFederationWith(t, port, func(i int, m map[string]any) {
		if i == 0 {
			delete(m, "allowPrivate")
		}
	}, "alpha", "beta")
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: "127.0.0.2:" + fmt.Sprint(port), PeerListen: "127.0.0.2:0"},
		Federation: &gateway.FederationConfig{Key: keys["beta"], Members: fed}})
	alphaURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := &federation.HelpRequest{Site: siteName, Version: "v", InfoHash: fmt.Sprintf("%040x", 1), Origin: alphaURL,
		Tracker: "ws://127.0.0.1:" + fmt.Sprint(port) + swarmapi.PathAnnounce, Capacity: 10, Until: time.Now().Add(time.Minute)}
	err := memberClient(t, fed, keys, "alpha").Send(context.Background(), fmt.Sprintf("http://127.0.0.2:%d", port),
		federation.KindHelpRequest, r, &federation.Accept{})
	if !refusedWith(err, http.StatusForbidden) {
		t.Errorf("help request from a loopback member without allowPrivate: %v; want 403", err)
	}
}

// TestReadyAddressesMustBeListed: the site publishes a helper only at an address the federation file lists
// for it; a Ready naming another address (plain or HTTPS), or from a member it did not ask, is refused, and
// that address never reaches DNS. beta is a member run by the test that serves alpha's content correctly at
// its listed address and at an unlisted one.
func TestReadyAddressesMustBeListed(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	keys, fed := newFederation(t, port, "alpha", "beta", "gamma")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	dnsSrv, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0", TTL: time.Second,
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: addrs("127.0.0.1")}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	alpha := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), PeerListen: "127.0.0.1:0"},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: &gateway.FederationConfig{Key: keys["alpha"], Members: fed, HealthInterval: 300 * time.Millisecond},
		DNS:        dnsSrv,
		Monitor:    monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: time.Minute}})
	testutil.Eventually(t, 10*time.Second, "alpha's first version", func() bool { return alpha.g.Catalog().Current() != nil })
	v := alpha.g.Catalog().Current()

	// beta: its federation endpoint answers help requests with Accept; everything else is the site, served
	// from alpha's version as a helper would. The same content is served at an address beta does not own.
	asked := make(chan *federation.HelpRequest, 4)
	betaVerifier, err := federation.NewVerifier(federation.VerifierConfig{Federation: fed, Self: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, _, err := v.Open(r.URL.Path[1:])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer rc.Close()
		io.Copy(w, rc)
	})
	mux := http.NewServeMux()
	mux.Handle("POST "+federation.Path, federation.Handler(betaVerifier, keys["beta"], testLogger(t),
		func(_ context.Context, env *federation.Envelope) (federation.Message, error) {
			if r, ok := env.Message.(*federation.HelpRequest); ok {
				asked <- r
				return &federation.Accept{InfoHash: r.InfoHash, Capacity: 10}, nil
			}
			return nil, nil
		}))
	mux.Handle("/", site)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	unlisted := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.9:%d", port))
	ln9, err := net.Listen("tcp", unlisted.String())
	if err != nil {
		t.Fatal(err)
	}
	srv9 := &http.Server{Handler: site}
	go srv9.Serve(ln9)
	defer srv9.Close()

	// gamma crashes the party before anyone is asked: refused.
	alphaURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx := context.Background()
	ready := func(from string, r *federation.Ready) error {
		return memberClient(t, fed, keys, from).Send(ctx, alphaURL, federation.KindReady, r, nil)
	}
	proof := func(challenge string) string {
		c, _ := hex.DecodeString(challenge)
		piece, err := seeder.ReadPiece(&v.Info, v.Dir, federation.ChallengePiece(c, v.Info.NumPieces()))
		if err != nil {
			t.Fatal(err)
		}
		return federation.ProofOf(c, piece)
	}
	if err := ready("gamma", &federation.Ready{Site: siteName, InfoHash: v.InfoHash.HexString(), Address: unlisted,
		Proof: proof("00")}); !refusedWith(err, http.StatusForbidden) {
		t.Errorf("ready from a member not asked: %v; want 403", err)
	}

	stopLoad := startLoad(t, alphaURL+"/style.css")
	defer stopLoad()
	var req *federation.HelpRequest
	select {
	case req = <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("alpha did not ask beta for help")
	}
	listed := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.2:%d", port))
	base := federation.Ready{Site: siteName, InfoHash: req.InfoHash, Address: listed, Proof: proof(req.Challenge)}
	for name, edit := range map[string]func(r *federation.Ready){
		"unlisted address":       func(r *federation.Ready) { r.Address = unlisted },
		"unlisted HTTPS address": func(r *federation.Ready) { r.TLSAddress = unlisted },
	} {
		r := base
		edit(&r)
		if err := ready("beta", &r); !refusedWith(err, http.StatusForbidden) {
			t.Errorf("%s: %v; want 403", name, err)
		}
	}
	if err := ready("beta", &base); err != nil {
		t.Fatalf("ready at the listed address: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "beta in DNS", func() bool {
		return slices.Contains(resolve(t, dnsSrv.Addr()), listed.Addr())
	})
	if got := resolve(t, dnsSrv.Addr()); slices.Contains(got, unlisted.Addr()) {
		t.Errorf("DNS publishes %v, with an address the federation file does not list", got)
	}
}

// TestHelpersLeaseIsRenewed: a helper stops serving at its lease's end, so the site renews its helpers'
// leases while the crowd lasts: beta still serves, and is still in DNS, well after its first lease ended.
func TestHelpersLeaseIsRenewed(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	keys, fed := newFederation(t, port, "alpha", "beta")
	dnsSrv, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0", TTL: time.Second,
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: addrs("127.0.0.1")}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	const lease = 3 * time.Second
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), PeerListen: "127.0.0.1:0"},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: &gateway.FederationConfig{Key: keys["alpha"], Members: fed, HealthInterval: 300 * time.Millisecond, HelpLease: lease},
		DNS:        dnsSrv,
		Monitor:    monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: time.Minute}})
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.2:%d", port), PeerListen: "127.0.0.2:0"},
		Federation: &gateway.FederationConfig{Key: keys["beta"], Members: fed}})
	stopLoad := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port))
	defer stopLoad()
	beta := fmt.Sprintf("http://127.0.0.2:%d", port)
	testutil.Eventually(t, 30*time.Second, "beta serving the site", func() bool { return serving(t, beta, siteName, examplesite.ImagePNG) })
	start := time.Now()
	testutil.Eventually(t, 4*lease, "three leases to pass", func() bool { return time.Since(start) > 3*lease })
	if !serving(t, beta, siteName, examplesite.ImagePNG) {
		t.Fatal("beta stopped serving the site during the crowd: its lease was not renewed")
	}
	if !slices.Contains(resolve(t, dnsSrv.Addr()), netip.MustParseAddr("127.0.0.2")) {
		t.Error("beta left DNS during the crowd")
	}
}
