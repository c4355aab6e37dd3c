package webseed

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/swarmgate/swarmgate/federation"
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
