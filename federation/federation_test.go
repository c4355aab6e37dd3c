package federation

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseFederation(t *testing.T) {
	alphaKey := FormatPublicKey(testKey("alpha").Public().(ed25519.PublicKey))
	betaKey := FormatPublicKey(testKey("beta").Public().(ed25519.PublicKey))
	// member builds a one-line member object with the given fields.
	member := func(name, url, key, addrs string) string {
		return `{"name":"` + name + `","url":"` + url + `","key":"` + key + `","addresses":[` + addrs + `]}`
	}
	file := func(members ...string) string { return `{"members":[` + strings.Join(members, ",") + `]}` }
	alpha := member("alpha", "https://alpha.example.org", alphaKey, `"192.0.2.1"`)

	tests := []struct {
		name    string
		in      string
		want    error  // nil: parses
		wantMsg string // a phrase the error must contain, so it points at the problem
	}{
		{name: "one member", in: file(alpha)},
		{name: "two members", in: file(alpha, member("beta", "http://198.51.100.7:8080/", betaKey, `"198.51.100.7","2001:db8::7"`))},
		{name: "no addresses", in: file(member("alpha", "http://a.example", alphaKey, ""))},
		{name: "addresses omitted", in: `{"members":[{"name":"alpha","url":"http://a.example","key":"` + alphaKey + `"}]}`},
		{name: "URL with path", in: file(member("alpha", "https://example.org/swarmgate/", alphaKey, ""))},
		{name: "IPv6 URL", in: file(member("alpha", "http://[2001:db8::1]:8080", alphaKey, `"2001:db8::1"`))},
		{name: "name with dot dash underscore", in: file(member("eu-1.node_a", "http://a.example", alphaKey, ""))},

		{name: "not JSON", in: `members: alpha`, want: ErrFederationFile},
		{name: "syntax error", in: `{"members":[`, want: ErrFederationFile},
		{name: "wrong type", in: `{"members":{"alpha":{}}}`, want: ErrFederationFile, wantMsg: `"members"`},
		{name: "unknown field", in: `{"members":[],"peers":[]}`, want: ErrFederationFile, wantMsg: `"peers"`},
		{name: "unknown member field", in: file(`{"name":"alpha","url":"http://a.example","key":"` + alphaKey + `","adresses":[]}`),
			want: ErrFederationFile, wantMsg: `"adresses"`},
		{name: "trailing data", in: file(alpha) + `{}`, want: ErrFederationFile},
		{name: "empty file", in: ``, want: ErrFederationFile},
		{name: "no members", in: `{"members":[]}`, want: ErrNoMembers},
		{name: "members missing", in: `{}`, want: ErrNoMembers},

		{name: "empty name", in: file(member("", "http://a.example", alphaKey, "")), want: ErrBadName, wantMsg: "member 1"},
		{name: "name with space", in: file(member("al pha", "http://a.example", alphaKey, "")), want: ErrBadName},
		{name: "name starting with dash", in: file(member("-alpha", "http://a.example", alphaKey, "")), want: ErrBadName},
		{name: "name too long", in: file(member(strings.Repeat("a", 64), "http://a.example", alphaKey, "")), want: ErrBadName},
		{name: "duplicate name", in: file(alpha, member("alpha", "http://b.example", betaKey, "")),
			want: ErrDuplicateName, wantMsg: "member 2"},

		{name: "no URL", in: file(member("alpha", "", alphaKey, "")), want: ErrBadURL},
		{name: "relative URL", in: file(member("alpha", "alpha.example.org", alphaKey, "")), want: ErrBadURL},
		{name: "ftp URL", in: file(member("alpha", "ftp://a.example", alphaKey, "")), want: ErrBadURL, wantMsg: "http or https"},
		{name: "URL with query", in: file(member("alpha", "http://a.example/?x=1", alphaKey, "")), want: ErrBadURL},
		{name: "URL with fragment", in: file(member("alpha", "http://a.example/#x", alphaKey, "")), want: ErrBadURL},
		{name: "URL with user", in: file(member("alpha", "http://u:p@a.example", alphaKey, "")), want: ErrBadURL},
		{name: "URL without host", in: file(member("alpha", "http://:8080", alphaKey, "")), want: ErrBadURL},
		{name: "unparsable URL", in: file(member("alpha", "http://a.example:port", alphaKey, "")), want: ErrBadURL},
		{name: "duplicate URL", in: file(alpha, member("beta", "HTTPS://Alpha.Example.org/", betaKey, "")), want: ErrDuplicateURL},

		{name: "no key", in: file(member("alpha", "http://a.example", "", "")), want: ErrBadPublicKey},
		{name: "key without prefix", in: file(member("alpha", "http://a.example", strings.TrimPrefix(alphaKey, "ed25519:"), "")),
			want: ErrBadPublicKey, wantMsg: `prefix "ed25519:"`},
		{name: "short key", in: file(member("alpha", "http://a.example", alphaKey[:40], "")), want: ErrBadPublicKey},
		{name: "duplicate key", in: file(alpha, member("beta", "http://b.example", alphaKey, "")),
			want: ErrDuplicateKey, wantMsg: `"alpha"`},

		{name: "host name as address", in: file(member("alpha", "http://a.example", alphaKey, `"a.example"`)), want: ErrBadAddress},
		{name: "address with port", in: file(member("alpha", "http://a.example", alphaKey, `"192.0.2.1:80"`)), want: ErrBadAddress},
		{name: "address with zone", in: file(member("alpha", "http://a.example", alphaKey, `"fe80::1%eth0"`)), want: ErrBadAddress},
		{name: "unspecified address", in: file(member("alpha", "http://a.example", alphaKey, `"0.0.0.0"`)), want: ErrBadAddress},
		{name: "multicast address", in: file(member("alpha", "http://a.example", alphaKey, `"224.0.0.1"`)), want: ErrBadAddress},
		{name: "bad octet", in: file(member("alpha", "http://a.example", alphaKey, `"192.0.2.256"`)), want: ErrBadAddress, wantMsg: "192.0.2.256"},
		{name: "duplicate address", in: file(member("alpha", "http://a.example", alphaKey, `"192.0.2.1","::ffff:192.0.2.1"`)),
			want: ErrDuplicateAddress},

		{name: "sites and allowPrivate", in: file(withFields(member("alpha", "http://127.0.0.1:8080", alphaKey, `"127.0.0.1"`),
			`"sites":["www.example.com","Example.COM."],"allowPrivate":true`))},
		{name: "allowPrivate false", in: file(withFields(alpha, `"allowPrivate":false`))},
		{name: "empty sites", in: file(withFields(alpha, `"sites":[]`))},
		{name: "site single label", in: file(withFields(alpha, `"sites":["intranet"]`))},
		{name: "site IPv4", in: file(withFields(alpha, `"sites":["192.0.2.1"]`)), want: ErrBadSite, wantMsg: "IP address"},
		{name: "site IPv6", in: file(withFields(alpha, `"sites":["2001:db8::1"]`)), want: ErrBadSite},
		{name: "site bracketed IPv6", in: file(withFields(alpha, `"sites":["[::1]"]`)), want: ErrBadSite},
		{name: "site numeric last label", in: file(withFields(alpha, `"sites":["10.1"]`)), want: ErrBadSite, wantMsg: "digits"},
		{name: "site wildcard", in: file(withFields(alpha, `"sites":["*.example.com"]`)), want: ErrBadSite, wantMsg: "wildcards"},
		{name: "site with port", in: file(withFields(alpha, `"sites":["example.com:443"]`)), want: ErrBadSite},
		{name: "site with path", in: file(withFields(alpha, `"sites":["example.com/a"]`)), want: ErrBadSite},
		{name: "site with underscore", in: file(withFields(alpha, `"sites":["a_b.example.com"]`)), want: ErrBadSite},
		{name: "site empty", in: file(withFields(alpha, `"sites":[""]`)), want: ErrBadSite},
		{name: "site empty label", in: file(withFields(alpha, `"sites":["a..example"]`)), want: ErrBadSite},
		{name: "site label dash", in: file(withFields(alpha, `"sites":["-a.example"]`)), want: ErrBadSite},
		{name: "site label too long", in: file(withFields(alpha, `"sites":["`+strings.Repeat("a", 64)+`.example"]`)), want: ErrBadSite},
		{name: "site too long", in: file(withFields(alpha, `"sites":["`+strings.Repeat("a.", 127)+`ab"]`)), want: ErrBadSite},
		{name: "site not a string", in: file(withFields(alpha, `"sites":"www.example.com"`)), want: ErrFederationFile, wantMsg: "sites"},
		{name: "too many sites", in: file(withFields(alpha, `"sites":[`+manySites(maxSitesPerMember+1)+`]`)), want: ErrBadSite},
		{name: "site twice in a member", in: file(withFields(alpha, `"sites":["www.example.com","WWW.example.com."]`)),
			want: ErrDuplicateSite},
		{name: "site in two members", in: file(withFields(alpha, `"sites":["www.example.com"]`),
			withFields(member("beta", "http://b.example", betaKey, ""), `"sites":["www.example.com"]`)),
			want: ErrDuplicateSite, wantMsg: `member 2 ("beta")`},
		{name: "allowPrivate not a bool", in: file(withFields(alpha, `"allowPrivate":"yes"`)), want: ErrFederationFile,
			wantMsg: "allowPrivate"},
		{name: "misspelt allowPrivate", in: file(withFields(alpha, `"allow_private":true`)), want: ErrFederationFile,
			wantMsg: "allow_private"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fed, err := ParseFederation([]byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseFederation: %v", err)
				}
				if len(fed.Members()) == 0 {
					t.Fatal("no members")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseFederation = %v; want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "federation: ") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q: want the component and %q", err, tc.wantMsg)
			}
		})
	}
}

// withFields adds JSON fields to a one-line member object.
func withFields(member, fields string) string {
	return strings.TrimSuffix(member, "}") + "," + fields + "}"
}

// manySites is n distinct site names as JSON strings.
func manySites(n int) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`"s%d.example.com"`, i))
	}
	return strings.Join(out, ",")
}

func TestFederationSites(t *testing.T) {
	fed, err := ParseFederation([]byte(`{"members":[
		{"name":"alpha","url":"http://a.example","key":"` + FormatPublicKey(testKey("alpha").Public().(ed25519.PublicKey)) + `",
		 "sites":["WWW.Example.com.","example.com"],"allowPrivate":true},
		{"name":"beta","url":"http://b.example","key":"` + FormatPublicKey(testKey("beta").Public().(ed25519.PublicKey)) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := fed.Member("alpha")
	b, _ := fed.Member("beta")
	if !slices.Equal(a.Sites, []string{"www.example.com", "example.com"}) || !a.AllowPrivate {
		t.Errorf("alpha: sites %q, allowPrivate %v", a.Sites, a.AllowPrivate)
	}
	if len(b.Sites) != 0 || b.AllowPrivate {
		t.Errorf("beta: sites %q, allowPrivate %v; want none and false", b.Sites, b.AllowPrivate)
	}
	for _, s := range []string{"www.example.com", "WWW.EXAMPLE.COM", "example.com."} {
		if !a.HasSite(s) || b.HasSite(s) {
			t.Errorf("HasSite(%q): alpha %v, beta %v", s, a.HasSite(s), b.HasSite(s))
		}
		if m, ok := fed.SiteOwner(s); !ok || m.Name != "alpha" {
			t.Errorf("SiteOwner(%q) = %q, %v", s, m.Name, ok)
		}
	}
	if a.HasSite("other.example.com") || a.HasSite("") {
		t.Error("alpha has a site it does not list")
	}
	if _, ok := fed.SiteOwner("other.example.com"); ok {
		t.Error("an unlisted site has an owner")
	}
}

func TestFederationLookups(t *testing.T) {
	fed, err := ParseFederation(federationJSON(t,
		memberJSON("alpha", "HTTP://Alpha.Example:8080/", "192.0.2.1", "::ffff:192.0.2.2", "2001:db8::1"),
		memberJSON("beta", "https://beta.example/sg", "198.51.100.7")))
	if err != nil {
		t.Fatal(err)
	}
	ms := fed.Members()
	if len(ms) != 2 || ms[0].Name != "alpha" || ms[1].Name != "beta" {
		t.Fatalf("Members = %+v", ms)
	}
	a, ok := fed.Member("alpha")
	if !ok || a.URL != "http://alpha.example:8080" {
		t.Fatalf("Member(alpha) = %+v, %v", a, ok)
	}
	wantAddrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")}
	if len(a.Addresses) != len(wantAddrs) {
		t.Fatalf("addresses %v, want %v", a.Addresses, wantAddrs)
	}
	for i := range wantAddrs {
		if a.Addresses[i] != wantAddrs[i] {
			t.Errorf("address %d = %v, want %v", i, a.Addresses[i], wantAddrs[i])
		}
	}
	if _, ok := fed.Member("mallory"); ok {
		t.Error("Member(mallory) found")
	}
	for _, u := range []string{"https://beta.example/sg", "https://BETA.example/sg/", "HTTPS://beta.example/sg"} {
		if m, ok := fed.MemberByURL(u); !ok || m.Name != "beta" {
			t.Errorf("MemberByURL(%q) = %+v, %v", u, m, ok)
		}
	}
	for _, u := range []string{"http://beta.example/sg", "https://beta.example", "https://beta.example/sg/x", "::"} {
		if m, ok := fed.MemberByURL(u); ok {
			t.Errorf("MemberByURL(%q) = %+v", u, m)
		}
	}
	if m, ok := fed.MemberByKey(testKey("beta").Public().(ed25519.PublicKey)); !ok || m.Name != "beta" {
		t.Errorf("MemberByKey(beta) = %+v, %v", m, ok)
	}
	if m, err := fed.Self(testKey("alpha")); err != nil || m.Name != "alpha" {
		t.Errorf("Self(alpha's key) = %+v, %v", m, err)
	}
	_, err = fed.Self(testKey("mallory"))
	if !errors.Is(err, ErrNotAMember) || !strings.Contains(err.Error(), "ed25519:") {
		t.Errorf("Self(mallory's key) = %v; want ErrNotAMember naming the key to add", err)
	}
	if _, err := fed.Self(ed25519.PrivateKey{1, 2, 3}); err == nil {
		t.Error("Self accepted a truncated key")
	}
}

func TestLoadFederation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "federation.json")
	if err := os.WriteFile(path, federationJSON(t, memberJSON("alpha", "http://127.0.0.1:8080", "127.0.0.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	fed, err := LoadFederation(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fed.Member("alpha"); !ok {
		t.Fatal("alpha missing")
	}
	if _, err := LoadFederation(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"members":[]}`), 0o644)
	if _, err := LoadFederation(bad); !errors.Is(err, ErrNoMembers) || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: %v; want ErrNoMembers naming the file", err)
	}
}
