// Package js holds the browser code: the loader (the site's one script tag) and the P2P engine it loads,
// written in TypeScript under src/ and bundled by esbuild into dist/, which this package embeds.
package js

//go:generate go run ./build

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Assets are the built bundles and the index naming them.
type Assets struct {
	FS     fs.FS  // the bundle files, by name
	Loader string // file name of the loader
	Engine string // file name of the engine (content-hashed)
	// ServiceWorker is the file name of the service worker.
	ServiceWorker string
	Index         map[string]string // logical name → file name
}

// Load returns the embedded bundles.
func Load() (*Assets, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("js: %w", err)
	}
	b, err := fs.ReadFile(sub, "index.json")
	if err != nil {
		return nil, fmt.Errorf("js: bundles not built (go generate ./js): %w", err)
	}
	a := &Assets{FS: sub}
	if err := json.Unmarshal(b, &a.Index); err != nil {
		return nil, fmt.Errorf("js: dist/index.json: %w", err)
	}
	a.Loader, a.Engine, a.ServiceWorker = a.Index["loader"], a.Index["engine"], a.Index["sw"]
	if a.Loader == "" || a.Engine == "" || a.ServiceWorker == "" {
		return nil, fmt.Errorf("js: dist/index.json lacks loader, engine or service worker")
	}
	return a, nil
}
