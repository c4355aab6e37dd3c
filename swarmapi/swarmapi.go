// Package swarmapi is swarmgate's wire contract: the paths under /.swarm/ and the JSON documents that cross
// them between the gateway, helpers and visitors' browsers (the manifest, the webseed list, an engine's
// stats report, a helper's job). It imports nothing of swarmgate's and holds no behaviour, so every part
// can depend on it.
//
// The browser code's copy of these types, js/src/swarmapi.ts, is generated from types.go
// (go test ./swarmapi -update); TestTypeScriptCurrent fails when the two disagree.
package swarmapi

// Paths the gateway serves itself; everything else goes to the origin.
const (
	Prefix = "/.swarm/"
	// PathAnnounce is the embedded WebSocket tracker (the WebTorrent tracker protocol).
	PathAnnounce = Prefix + "announce"
	// PathManifest is the current site version's Manifest, for the page that asks.
	PathManifest = Prefix + "manifest.json"
	// PathLoader is the loader script a site's pages include.
	PathLoader = Prefix + "loader.js"
	// PathServiceWorker is the loader's service worker, installed for scope / (never over a site's own).
	PathServiceWorker = Prefix + "sw.js"
	// PathSeed is the BEP 19 webseed root: PathSeed + version name + "/" + file path. The site's gateway
	// serves its own versions there, and a helper the versions it helps with.
	PathSeed = Prefix + "seed/"
	// PathHead + version name + "/" + piece indices (decimal, comma-separated) is those pieces of the
	// version, one after another in the order named, each without its BEP 47 padding: the first pieces a
	// page view needs, which a page rewritten outside a crowd preloads, so that the browser asks for them
	// with the page's own first requests, before the engine has started. Immutable, like a version.
	PathHead = Prefix + "head/"
	// PathStats takes engines' StatsReports (POST).
	PathStats = Prefix + "stats"
	// PathWebseeds answers ?version= with a version's Webseeds for engines still loading.
	PathWebseeds = Prefix + "webseeds"
	// PathJob + infohash (hex) is a version's Job, which a recruited helper fetches.
	PathJob = Prefix + "job/"
	// PathFederation is the federation endpoint (signed messages between members): the federation
	// package's Path, which a test keeps equal to this one (that package imports nothing of ours).
	PathFederation = Prefix + "federation"
	// PathMetrics is the operator's Prometheus endpoint.
	PathMetrics = Prefix + "metrics"
	// PathDashboard, PathStatus and PathStatusStream are the operator's dashboard, its JSON status API and
	// that API as server-sent events.
	PathDashboard    = Prefix + "dashboard"
	PathStatus       = Prefix + "status"
	PathStatusStream = Prefix + "status/stream"
)
