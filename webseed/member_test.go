package webseed

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestMemberConfig: a helper that takes a federation's help requests needs its identity, a client to answer
// with and its server's listeners; without them New refuses, rather than failing at the first request.
func TestMemberConfig(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	fed, err := federation.ParseFederation([]byte(fmt.Sprintf(
		`{"members":[{"name":"beta","url":"http://127.0.0.2","key":%q,"addresses":["127.0.0.2"],"allowPrivate":true}]}`,
		federation.FormatPublicKey(pub))))
	if err != nil {
		t.Fatal(err)
	}
	self, err := fed.Self(key)
	if err != nil {
		t.Fatal(err)
	}
	sd := newSeeder(t, "127.0.0.2")
	client := &federation.Client{Key: key, Name: self.Name}
	addrs := func() Addrs { return Addrs{HTTP: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8000}} }
	for name, cfg := range map[string]Config{
		"no self":   {Federation: fed, Client: client, Addrs: addrs},
		"no client": {Federation: fed, Self: self, Addrs: addrs},
		"no addrs":  {Federation: fed, Self: self, Client: client},
	} {
		cfg.DataDir, cfg.Seeder = t.TempDir(), sd
		if h, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			if h != nil {
				_ = h.Close()
			}
			t.Errorf("%s: New = %v, want ErrBadConfig", name, err)
		}
	}
	h, err := New(Config{DataDir: t.TempDir(), Seeder: sd, Federation: fed, Self: self, Client: client, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJobPeers: of a job's peers, the helper keeps the requesting site's own addresses as its peers and
// other members' as fellows (asked first, with the webseed at each one's URL), and drops its own and any
// address the federation file does not list.
func TestJobPeers(t *testing.T) {
	keys := map[string]ed25519.PrivateKey{}
	var members []string
	for i, name := range []string{"alpha", "beta", "gamma"} {
		pub, key, _ := ed25519.GenerateKey(nil)
		keys[name] = key
		members = append(members, fmt.Sprintf(`{"name":%q,"url":"http://127.0.0.%d","key":%q,"addresses":["127.0.0.%d"],"allowPrivate":true}`,
			name, i+1, federation.FormatPublicKey(pub), i+1))
	}
	fed, err := federation.ParseFederation([]byte(`{"members":[` + strings.Join(members, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	self, err := fed.Self(keys["beta"])
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{DataDir: t.TempDir(), Seeder: newSeeder(t, "127.0.0.2"), Federation: fed, Self: self,
		Client: &federation.Client{Key: keys["beta"], Name: self.Name},
		Addrs:  func() Addrs { return Addrs{HTTP: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8000}} }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	alpha, _ := fed.Member("alpha")
	site, fellows, seeds := h.jobPeers(context.Background(), alpha,
		[]string{"127.0.0.1:6881", "127.0.0.3:6882", "127.0.0.9:6883", "127.0.0.1:0", "no port", "127.0.0.3:6884", "127.0.0.2:6885"})
	if !slices.Equal(site, []string{"127.0.0.1:6881"}) || !slices.Equal(fellows, []string{"127.0.0.3:6882", "127.0.0.3:6884"}) {
		t.Errorf("site peers %q and fellows %q; want [127.0.0.1:6881] and [127.0.0.3:6882 127.0.0.3:6884]", site, fellows)
	}
	if want := []string{"http://127.0.0.3" + swarmapi.PathSeed}; !slices.Equal(seeds, want) {
		t.Errorf("fellows' webseeds %q, want %q: gamma's, once", seeds, want)
	}
}
