package gateway

import (
	"math"
	"net/http"
	"strings"

	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/uplink"
)

// criticalBytes bounds what one response sends ahead of bulk transfers on the site's uplink (uplink.Prefer):
// a page, a script, the manifest, the engine fit in it; a large file asked for as a script does not hold the
// link past it.
const criticalBytes = 256 << 10

// withCriticalFirst has the site's uplink (Config.Net.Uplink) send first what a visitor's page waits on before
// anything else can move: the page itself, its scripts and styles, swarmgate's loader, manifest, engine and
// service worker, and the tracker's signalling. In a crowd the site's link is full (helpers fetching the site,
// which are favoured, then plain visitors' downloads and the site's webseed), and a newcomer's engine script
// otherwise waited behind all of it. Files, webseed ranges and everything else compete as before. A request
// says what it is (Sec-Fetch-Dest), so a client can claim a file is a script: it gains criticalBytes per
// request, and preferred writes together never take more than uplink.PreferredShare of the link. HTTP/2
// connections carry several responses at once and are left alone.
func withCriticalFirst(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			uplink.Prefer(r.Context(), critical(r))
		}
		next.ServeHTTP(w, r)
	})
}

// critical is how many bytes of r's response go first.
func critical(r *http.Request) int64 {
	p := r.URL.Path
	switch {
	case p == swarmapi.PathAnnounce:
		return math.MaxInt64 // signalling, for the socket's life: offers and answers of a few KB each
	case strings.HasPrefix(p, swarmapi.PathSeed):
		return 0 // the webseed: bulk
	case strings.HasPrefix(p, swarmapi.Prefix):
		return criticalBytes
	}
	switch r.Header.Get("Sec-Fetch-Dest") {
	case "document", "iframe", "frame", "script", "style", "font", "worker", "sharedworker", "serviceworker", "manifest":
		return criticalBytes
	}
	return 0
}
