package steer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// namedPath is where Debian's bind9 package installs BIND.
const namedPath = "/usr/sbin/named"

// namedStartTimeout bounds the wait for a throwaway named to answer; it is up in about a second.
const namedStartTimeout = 15 * time.Second

// freePort finds a loopback port free for both UDP and TCP. named binds it a moment later; a clash is
// unlikely and shows as named failing to start.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free UDP+TCP port on 127.0.0.1")
	return 0
}

// startNamed runs a throwaway BIND 9 on 127.0.0.1 at port (0: a free one) with the given zone and key
// statements (named.conf syntax) and zone files, waits until it answers authoritatively for waitZone, and kills it when the test
// ends. It fails the test when BIND is not installed: the CI script installs it.
func startNamed(t *testing.T, port int, statements string, files map[string]string, waitZone string) (addr string) {
	t.Helper()
	if _, err := os.Stat(namedPath); err != nil {
		t.Fatalf("%s not found (%v): this test needs BIND 9; install the Debian packages bind9 and bind9-dnsutils "+
			"(bash .ci/test installs them)", namedPath, err)
	}
	// Not t.TempDir: its parent is private to root, and named drops to the bind user.
	dir, err := os.MkdirTemp("", "swarmgate-named-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if port == 0 {
		port = freePort(t)
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
};
controls { };
%[3]s
`, dir, port, statements)
	files["named.conf"] = conf
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-g", "-c", filepath.Join(dir, "named.conf")}
	if os.Geteuid() == 0 {
		// As root, named drops to the bind user, which must own the directory (it writes its journal there).
		u, err := user.Lookup("bind")
		if err != nil {
			t.Fatalf("running as root but no user bind: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, uid, gid)
		}); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-u", "bind")
	}
	proc := testutil.StartProcess(t, exec.Command(namedPath, args...), "named", "NAMED_LOG")

	start := time.Now()
	deadline := start.Add(namedStartTimeout)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	for {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(waitZone), dns.TypeSOA)
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) > 0 {
			break
		}
		select {
		case <-proc.Exited():
			t.Fatalf("named exited before answering: %v\n%s", proc.Err(), proc.Logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("named did not answer for %s within %s\n%s", waitZone, namedStartTimeout, proc.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("named up on %s after %s", addr, time.Since(start).Round(time.Millisecond))
	return addr
}

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// lookup asks server for name's A and AAAA records with miekg/dns and returns them sorted.
func lookup(t *testing.T, server, name string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := query(t, server, name, qtype)
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s %s at %s: %s", name, dns.TypeToString[qtype], server, dns.RcodeToString[r.Rcode])
		}
		out = append(out, addrsIn(r.Answer)...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// digLookup does the same with BIND's dig, when it is installed.
func digLookup(t *testing.T, server, name string) ([]netip.Addr, bool) {
	t.Helper()
	dig, err := exec.LookPath("dig")
	if err != nil {
		return nil, false
	}
	host, port, _ := net.SplitHostPort(server)
	var out []netip.Addr
	for _, qtype := range []string{"A", "AAAA"} {
		b, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+norecurse", "+time=2", "+tries=1", name, qtype).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s %s: %v\n%s", name, qtype, err, b)
		}
		for _, line := range strings.Fields(string(b)) {
			a, err := netip.ParseAddr(line)
			if err != nil {
				t.Fatalf("dig %s %s printed %q", name, qtype, b)
			}
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, true
}

// digTXT asks server for name's TXT values with BIND's dig, when it is installed.
func digTXT(t *testing.T, server, name string) ([]string, bool) {
	t.Helper()
	dig, err := exec.LookPath("dig")
	if err != nil {
		return nil, false
	}
	host, port, _ := net.SplitHostPort(server)
	b, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+norecurse", "+time=2", "+tries=1", name, "TXT").CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s TXT: %v\n%s", name, err, b)
	}
	var out []string
	for _, line := range strings.Fields(string(b)) {
		v, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("dig %s TXT printed %q", name, b)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, true
}

// narrowUpdater uses the test zone's key that may only change only.example.test's addresses.
func narrowUpdater(t *testing.T, server, secret string) *Updater {
	t.Helper()
	u, err := NewUpdater(UpdaterConfig{Server: server, Zone: "example.test", KeyName: "narrow", Secret: secret, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUpdaterBIND publishes through RFC 2136 + TSIG to a real BIND 9 primary and reads the records back
// with real DNS queries.
func TestUpdaterBIND(t *testing.T) {
	secret, narrowSecret := newSecret(t), newSecret(t)
	statements := fmt.Sprintf(`
key "swarmgate-test." { algorithm hmac-sha256; secret "%s"; };
key "narrow." { algorithm hmac-sha256; secret "%s"; };
zone "example.test" {
	type primary;
	file "example.test.db";
	update-policy {
		grant swarmgate-test. zonesub ANY;
		grant narrow. name only.example.test. A AAAA;
	};
};
`, secret, narrowSecret)
	zoneFile := `$ORIGIN example.test.
$TTL 300
@	IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 1209600 30
@	IN NS ns1.example.test.
ns1	IN A 127.0.0.1
`
	server := startNamed(t, 0, statements, map[string]string{"example.test.db": zoneFile}, "example.test")

	cfg := UpdaterConfig{Server: server, Zone: "example.test", KeyName: "swarmgate-test", Secret: secret, Logger: testLogger(t)}
	u, err := NewUpdater(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(step string, want ...netip.Addr) {
		t.Helper()
		slices.SortFunc(want, netip.Addr.Compare)
		if got := lookup(t, server, "www.example.test"); !slices.Equal(got, want) {
			t.Errorf("%s: BIND answers %v, want %v", step, got, want)
		}
		if got, ok := digLookup(t, server, "www.example.test"); ok && !slices.Equal(got, want) {
			t.Errorf("%s: dig shows %v, want %v", step, got, want)
		}
	}

	start := time.Now()
	mustSet(t, u, "www.example.test", Weighted{origin4, 1})
	t.Logf("first signed update took %s", time.Since(start).Round(time.Microsecond))
	check("normal", origin4)
	r := query(t, server, "www.example.test", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 30 {
		t.Errorf("TTL of the published record: %v, want 30", r.Answer)
	}
	mustSet(t, u, "www.example.test", Weighted{origin4, 1}, Weighted{helperA, 5}, Weighted{helperB, 5}, Weighted{origin6, 1})
	check("crowd", origin4, helperA, helperB, origin6)
	if err := u.Withdraw(ctx, "www.example.test", helperA, origin6); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	check("helper withdrawn", origin4, helperB)
	mustSet(t, u, "www.example.test", Weighted{origin4, 1})
	check("crowd over", origin4)
	mustSet(t, u, "www.example.test")
	check("name removed")
	if r := query(t, server, "www.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after removing the name: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	mustSet(t, u, "example.test", Weighted{origin4, 1}) // at the apex, beside SOA and NS
	if got := lookup(t, server, "example.test"); !slices.Equal(got, []netip.Addr{origin4}) {
		t.Errorf("apex: %v", got)
	}

	// ACME challenge values: two helpers validating at once, each removed on its own.
	const challenge = "_acme-challenge.www.example.test"
	checkTXT := func(step string, want ...string) {
		t.Helper()
		slices.Sort(want)
		got, ttls := txtValues(t, server, challenge)
		if !slices.Equal(got, want) {
			t.Errorf("%s: BIND answers TXT %v, want %v", step, got, want)
		}
		for _, ttl := range ttls {
			if ttl != uint32(TXTTTL.Seconds()) {
				t.Errorf("%s: TXT TTL %d, want %v", step, ttl, TXTTTL)
			}
		}
		if got, ok := digTXT(t, server, challenge); ok && !slices.Equal(got, want) {
			t.Errorf("%s: dig shows TXT %v, want %v", step, got, want)
		}
	}
	for _, v := range []string{txtA, txtB} {
		if err := u.AddTXT(ctx, challenge, v); err != nil {
			t.Fatalf("AddTXT: %v", err)
		}
	}
	checkTXT("two challenges", txtA, txtB)
	if err := u.RemoveTXT(ctx, challenge, txtA); err != nil {
		t.Fatalf("RemoveTXT: %v", err)
	}
	checkTXT("one removed", txtB)
	if err := u.RemoveTXT(ctx, challenge, txtB); err != nil {
		t.Fatalf("RemoveTXT: %v", err)
	}
	checkTXT("both removed")
	if err := narrowUpdater(t, server, narrowSecret).AddTXT(ctx, challenge, txtA); !errors.Is(err, ErrRefused) {
		t.Errorf("TXT with a key granted only addresses: %v, want %v", err, ErrRefused)
	}
	if err := u.AddTXT(ctx, "_acme-challenge.www.example.com", txtA); !errors.Is(err, ErrOutsideZone) {
		t.Errorf("TXT outside the zone: %v", err)
	}

	failures := []struct {
		name string
		mod  func(*UpdaterConfig)
		qn   string
		want error
	}{
		{"wrong secret", func(c *UpdaterConfig) { c.Secret = newSecret(t) }, "www.example.test", ErrBadSig},
		{"wrong algorithm", func(c *UpdaterConfig) { c.Algorithm = "hmac-sha512" }, "www.example.test", ErrBadKey}, // BIND finds keys by name and algorithm
		{"unknown key", func(c *UpdaterConfig) { c.KeyName = "stranger" }, "www.example.test", ErrBadKey},
		{"key without permission", func(c *UpdaterConfig) { c.KeyName, c.Secret = "narrow", narrowSecret }, "www.example.test", ErrRefused},
		{"zone the server does not serve", func(c *UpdaterConfig) { c.Zone = "other.test" }, "www.other.test", ErrNotAuth},
		{"over UDP", func(c *UpdaterConfig) { c.Net = "udp" }, "www.example.test", nil},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			c := cfg
			c.Logger = testLogger(t)
			f.mod(&c)
			u, err := NewUpdater(c)
			if err != nil {
				t.Fatal(err)
			}
			err = u.Set(ctx, f.qn, []Weighted{{helperB, 1}})
			if !errors.Is(err, f.want) && !(f.want == nil && err == nil) {
				t.Fatalf("Set: %v, want %v", err, f.want)
			}
			if err != nil {
				t.Logf("error reads: %v", err)
			}
		})
	}
	// The narrow key may do what its policy grants.
	mustSet(t, narrowUpdater(t, server, narrowSecret), "only.example.test", Weighted{helperA, 1})
	if got := lookup(t, server, "only.example.test"); !slices.Equal(got, []netip.Addr{helperA}) {
		t.Errorf("narrow key's record: %v", got)
	}
	// Nothing leaves the process for a name outside the zone.
	if err := u.Set(ctx, "www.example.com", []Weighted{{origin4, 1}}); !errors.Is(err, ErrOutsideZone) {
		t.Errorf("Set outside the zone: %v", err)
	}
	// An unreachable server fails within the timeout, with the network error.
	dead := cfg
	dead.Server, dead.Timeout = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), time.Second
	du, _ := NewUpdater(dead)
	if err := du.Set(ctx, "www.example.test", []Weighted{{origin4, 1}}); err == nil {
		t.Errorf("Set to a closed port succeeded")
	} else {
		t.Logf("unreachable server: %v", err)
	}
}

// TestBINDSecondary proves the hidden-primary setup against a real secondary: BIND transfers the embedded
// server's zone, and each change reaches it through NOTIFY and a new transfer.
func TestBINDSecondary(t *testing.T) {
	namedPort := freePort(t)
	cfg := testConfig()
	cfg.Logger = testLogger(t)
	cfg.TransferFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.NotifyTo = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(namedPort))}
	s := startServer(t, cfg) // named loads the zone from it at start, so it serves first
	mustSet(t, s, "www.example.test", Weighted{origin4, 1})
	statements := fmt.Sprintf(`
zone "example.test" {
	type secondary;
	primaries { 127.0.0.1 port %d; };
	file "example.test.bk";
	notify no;
};
`, s.Addr().Port())
	start := time.Now()
	secondary := startNamed(t, namedPort, statements, map[string]string{}, "example.test")
	t.Logf("BIND loaded the zone by transfer %s after start", time.Since(start).Round(time.Millisecond))
	if got := lookup(t, secondary, "www.example.test"); !slices.Equal(got, []netip.Addr{origin4}) {
		t.Fatalf("secondary answers %v, want %v", got, []netip.Addr{origin4})
	}

	steps := []struct {
		name string
		do   func() error
		want []netip.Addr
	}{
		{"crowd", func() error {
			return s.Set(context.Background(), "www.example.test", []Weighted{{origin4, 1}, {helperA, 3}, {origin6, 1}})
		}, []netip.Addr{origin4, helperA, origin6}},
		{"helper withdrawn", func() error { return s.Withdraw(context.Background(), "www.example.test", helperA) },
			[]netip.Addr{origin4, origin6}},
	}
	for _, st := range steps {
		changed := time.Now()
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "the secondary to carry the "+st.name+" change", func() bool {
			return slices.Equal(lookup(t, secondary, "www.example.test"), st.want)
		})
		t.Logf("%s: secondary answers the new set %s after the change", st.name, time.Since(changed).Round(time.Millisecond))
	}
	r := query(t, secondary, "example.test", dns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != s.Serial() {
		t.Errorf("secondary's SOA %v, want serial %d", r.Answer, s.Serial())
	}
}
