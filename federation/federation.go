package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// Member is one server of the federation, as the federation file lists it. Members are values; the slices
// they hold are shared with the Federation and must not be modified.
type Member struct {
	// Name identifies the member in envelopes and logs: 1 to 63 letters, digits, '.', '_' or '-', starting
	// with a letter or digit.
	Name string
	// URL is the base URL of the member's swarmgate (http or https, no query, no trailing slash); its
	// federation endpoint is URL + Path.
	URL string
	// Key is the member's Ed25519 public key; every envelope it sends is signed with the private half.
	Key ed25519.PublicKey
	// Addresses are the IP addresses the site's DNS publishes for this member while it helps. A member with
	// none can still help peer-to-peer clients and serve as a webseed, but is never steered to by DNS.
	Addresses []netip.Addr
	// Sites are the host names (lower-case, no trailing dot) of the sites this member may ask others to help
	// serve: the sites its gateway fronts. No two members list the same name, and a member never helps for
	// a name listed for itself.
	Sites []string
	// AllowPrivate lets the member's URL and addresses, and the URLs and addresses it sends, be loopback,
	// private, link-local or otherwise not Public: for members on one machine or one private network, and
	// for tests on loopback. Without it such addresses are never connected to on the member's behalf nor
	// published in DNS for it.
	AllowPrivate bool
}

// Federation is the parsed, validated federation file: the members, looked up by name, key or URL.
// It is read-only after parsing and safe for concurrent use.
type Federation struct {
	members []Member
	byName  map[string]int
	byKey   map[string]int
	byURL   map[string]int
	bySite  map[string]int
}

// fileMember is one member as the federation file spells it.
type fileMember struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Key          string   `json:"key"`
	Addresses    []string `json:"addresses"`
	Sites        []string `json:"sites"`
	AllowPrivate bool     `json:"allowPrivate"`
}

// fileFederation is the federation file:
//
//	{
//	  "members": [
//	    {"name": "alpha", "url": "https://alpha.example.org", "key": "ed25519:…", "addresses": ["192.0.2.10"],
//	     "sites": ["www.example.com"]},
//	    {"name": "beta", "url": "http://198.51.100.7:8080", "key": "ed25519:…", "addresses": ["198.51.100.7"]},
//	    {"name": "lab", "url": "http://10.0.0.5:8080", "key": "ed25519:…", "addresses": ["10.0.0.5"],
//	     "allowPrivate": true}
//	  ]
//	}
//
// "sites" lists the host names a member may ask help for; "allowPrivate" lets a member use loopback,
// private and link-local addresses (see Member). Unknown fields are refused, so a misspelt field is an
// error rather than silently ignored.
type fileFederation struct {
	Members []fileMember `json:"members"`
}

// LoadFederation reads and parses the federation file at path.
func LoadFederation(path string) (*Federation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFederationFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", path, err)
	}
	if len(data) > maxFederationFileSize {
		return nil, fmt.Errorf("federation: %s: larger than %d bytes: %w", path, maxFederationFileSize, ErrFederationFile)
	}
	fed, err := ParseFederation(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fed, nil
}

// ParseFederation parses and validates a federation file (see fileFederation for the format). Every member
// needs a valid, unique name, URL and key; addresses must be IP addresses without a zone, unique per member;
// sites must be host names (not IP addresses, no wildcards), each listed for one member only.
func ParseFederation(data []byte) (*Federation, error) {
	var ff fileFederation
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil {
		return nil, fmt.Errorf("federation: %w: %w", ErrFederationFile, jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("federation: %w: data after the JSON object", ErrFederationFile)
	}
	if len(ff.Members) == 0 {
		return nil, fmt.Errorf("federation: %w", ErrNoMembers)
	}
	fed := &Federation{
		byName: make(map[string]int, len(ff.Members)),
		byKey:  make(map[string]int, len(ff.Members)),
		byURL:  make(map[string]int, len(ff.Members)),
		bySite: make(map[string]int),
	}
	for i, fm := range ff.Members {
		m, err := parseMember(fm)
		if err != nil {
			return nil, fmt.Errorf("federation: member %d (%q): %w", i+1, fm.Name, err)
		}
		if j, dup := fed.byName[m.Name]; dup {
			return nil, fmt.Errorf("federation: member %d: name %q also used by member %d: %w", i+1, m.Name, j+1, ErrDuplicateName)
		}
		if j, dup := fed.byKey[string(m.Key)]; dup {
			return nil, fmt.Errorf("federation: member %d (%q): key also used by member %d (%q): %w",
				i+1, m.Name, j+1, fed.members[j].Name, ErrDuplicateKey)
		}
		if j, dup := fed.byURL[m.URL]; dup {
			return nil, fmt.Errorf("federation: member %d (%q): URL %s also used by member %d (%q): %w",
				i+1, m.Name, m.URL, j+1, fed.members[j].Name, ErrDuplicateURL)
		}
		for _, site := range m.Sites {
			if j, dup := fed.bySite[site]; dup {
				return nil, fmt.Errorf("federation: member %d (%q): site %q also listed for member %d (%q): %w",
					i+1, m.Name, site, j+1, fed.members[j].Name, ErrDuplicateSite)
			}
			fed.bySite[site] = i
		}
		fed.byName[m.Name] = i
		fed.byKey[string(m.Key)] = i
		fed.byURL[m.URL] = i
		fed.members = append(fed.members, m)
	}
	return fed, nil
}

// jsonError makes encoding/json's errors say where in the file the problem is.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("at byte %d: %w", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q at byte %d: a JSON %s is the wrong type here", typ.Field, typ.Offset, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("empty or truncated: %w", err)
	}
	return err
}

func parseMember(fm fileMember) (Member, error) {
	if !validName(fm.Name) {
		return Member{}, fmt.Errorf("name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit: %w",
			fm.Name, ErrBadName)
	}
	u, err := normalizeURL(fm.URL)
	if err != nil {
		return Member{}, err
	}
	key, err := ParsePublicKey(fm.Key)
	if err != nil {
		return Member{}, err
	}
	m := Member{Name: fm.Name, URL: u, Key: key}
	for _, s := range fm.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Member{}, fmt.Errorf("address %q: not an IP address: %w", s, ErrBadAddress)
		}
		switch {
		case a.Zone() != "":
			return Member{}, fmt.Errorf("address %q: a zone cannot be published in DNS: %w", s, ErrBadAddress)
		case a.IsUnspecified() || a.IsMulticast():
			return Member{}, fmt.Errorf("address %q: unspecified or multicast: %w", s, ErrBadAddress)
		}
		a = a.Unmap() // ::ffff:192.0.2.1 is published as the A record 192.0.2.1
		for _, b := range m.Addresses {
			if a == b {
				return Member{}, fmt.Errorf("address %q: %w", s, ErrDuplicateAddress)
			}
		}
		m.Addresses = append(m.Addresses, a)
	}
	m.AllowPrivate = fm.AllowPrivate
	if len(fm.Sites) > maxSitesPerMember {
		return Member{}, fmt.Errorf("%d sites, at most %d: %w", len(fm.Sites), maxSitesPerMember, ErrBadSite)
	}
	for _, s := range fm.Sites {
		site, err := parseSite(s)
		if err != nil {
			return Member{}, err
		}
		for _, o := range m.Sites {
			if o == site {
				return Member{}, fmt.Errorf("site %q: listed twice: %w", s, ErrDuplicateSite)
			}
		}
		m.Sites = append(m.Sites, site)
	}
	return m, nil
}

// parseSite checks a site name of the federation file and returns it lower-case without a trailing dot: a
// DNS host name of labels of letters, digits and '-' (not at a label's ends), at most 253 bytes, whose last
// label is not all digits (so it cannot be read as an IPv4 address).
func parseSite(s string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("site %q: %s: %w", s, why, ErrBadSite)
	}
	if name == "" || len(name) > 253 {
		return bad("want a host name of 1 to 253 bytes")
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return bad("an IP address is not a site name")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return bad("want labels of 1 to 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("a label may not start or end with '-'")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return bad("want only letters, digits, '-' and '.' (exact names: no wildcards, ports or paths)")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return bad("the last label is all digits, like an IP address")
	}
	return name, nil
}

// validName reports whether s is a member name: 1–63 of [A-Za-z0-9._-], starting with a letter or digit.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// normalizeURL checks a member's base URL and returns it in the form the federation stores and looks up:
// scheme and host lower-cased, no trailing slash.
func normalizeURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w: %w", s, ErrBadURL, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("URL %q: scheme must be http or https: %w", s, ErrBadURL)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("URL %q: no host: %w", s, ErrBadURL)
	case u.User != nil:
		return "", fmt.Errorf("URL %q: user information is not allowed: %w", s, ErrBadURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("URL %q: query and fragment are not allowed: %w", s, ErrBadURL)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// SiteOwner returns the member that the federation file lists site for (compared case-insensitively,
// without a trailing dot).
func (f *Federation) SiteOwner(site string) (Member, bool) {
	i, ok := f.bySite[strings.TrimSuffix(strings.ToLower(site), ".")]
	if !ok {
		return Member{}, false
	}
	return f.members[i], true
}

// Members returns the members in file order.
func (f *Federation) Members() []Member {
	return append([]Member(nil), f.members...)
}

// Member returns the member with this name.
func (f *Federation) Member(name string) (Member, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Member{}, false
	}
	return f.members[i], true
}

// MemberByKey returns the member with this public key.
func (f *Federation) MemberByKey(pub ed25519.PublicKey) (Member, bool) {
	i, ok := f.byKey[string(pub)]
	if !ok {
		return Member{}, false
	}
	return f.members[i], true
}

// MemberByURL returns the member whose base URL is u (compared after the same normalisation as the file's:
// scheme and host case, trailing slash).
func (f *Federation) MemberByURL(u string) (Member, bool) {
	n, err := normalizeURL(u)
	if err != nil {
		return Member{}, false
	}
	i, ok := f.byURL[n]
	if !ok {
		return Member{}, false
	}
	return f.members[i], true
}

// Self returns the member whose public key is key's: the entry for this server. A server learns its own name
// from the federation file this way, so its name and key cannot disagree.
func (f *Federation) Self(key ed25519.PrivateKey) (Member, error) {
	pub, err := publicKey(key)
	if err != nil {
		return Member{}, err
	}
	m, ok := f.MemberByKey(pub)
	if !ok {
		return Member{}, fmt.Errorf("federation: add a member with key %s: %w", FormatPublicKey(pub), ErrNotAMember)
	}
	return m, nil
}
