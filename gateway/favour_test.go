package gateway

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/federation"
)

// TestFavoured: a site that recruits favours only its first recruit still fetching (in DNS or not), and not
// past favourFor;
// a server that recruits no one favours its fellow members; no one else is ever favoured.
func TestFavoured(t *testing.T) {
	var members []string
	for i, n := range []string{"alpha", "beta", "gamma"} {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, fmt.Sprintf(`{"name":%q,"url":"http://127.0.0.%d","key":%q,"addresses":["127.0.0.%d"],"allowPrivate":true}`,
			n, i+1, federation.FormatPublicKey(pub), i+1))
	}
	fed, err := federation.ParseFederation([]byte(`{"members":[` + strings.Join(members, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	alpha, _ := fed.Member("alpha")
	beta, _ := fed.Member("beta")
	gamma, _ := fed.Member("gamma")
	c := &coordinator{cfg: FederationConfig{Members: fed}, self: alpha, helpers: map[string]*helperState{},
		fellows: fellowAddrs(fed, alpha.Name)}
	check := func(when string, want map[string]bool) {
		t.Helper()
		for a, w := range want {
			if got := c.favoured(ip(a)); got != w {
				t.Errorf("%s: favoured(%s) = %v, want %v", when, a, got, w)
			}
		}
	}

	check("recruiting no one", map[string]bool{"127.0.0.2": true, "127.0.0.3": true, "127.0.0.1": false, "192.0.2.1": false})

	now := time.Now()
	c.helpers["beta"] = &helperState{member: beta, state: helperAccepted, asked: now.Add(-2 * time.Second)}
	c.helpers["gamma"] = &helperState{member: gamma, state: helperAsked, asked: now.Add(-time.Second)}
	check("both fetching", map[string]bool{"127.0.0.2": true, "127.0.0.3": false, "192.0.2.1": false})

	c.helpers["beta"].state = helperReady // in DNS, serving while it fetches
	check("beta ready, still fetching", map[string]bool{"127.0.0.2": true, "127.0.0.3": false})

	c.helpers["beta"].fetched = true
	check("beta ready and fetched", map[string]bool{"127.0.0.2": false, "127.0.0.3": true})

	c.helpers["gamma"].asked = now.Add(-favourFor - time.Second)
	check("gamma fetching for too long", map[string]bool{"127.0.0.2": false, "127.0.0.3": false})

	c.helpers["gamma"].state, c.helpers["gamma"].fetched = helperReady, true
	check("both ready and fetched", map[string]bool{"127.0.0.2": true, "127.0.0.3": true, "192.0.2.1": false})
}
