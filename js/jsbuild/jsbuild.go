// Package jsbuild bundles the browser code in js/src with esbuild's Go API. `go generate ./js` writes the
// bundles to js/dist, where package js embeds them; a test here fails when js/dist is stale.
package jsbuild

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Bundle is one built file.
type Bundle struct {
	Name     string // file name in js/dist
	Contents []byte
}

// GzipSize returns the bundle's size gzipped at the best compression, the figure that matters on the wire.
func (b Bundle) GzipSize() int {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(b.Contents)
	_ = w.Close()
	return buf.Len()
}

// Index maps logical bundle names to file names in js/dist; it is written as dist/index.json.
type Index map[string]string

// entries are the bundles: the loader keeps a fixed name (it is the site's script tag); the others are
// content-hashed so they can be cached forever.
var entries = []struct {
	name, src string
	format    api.Format
	hashed    bool
}{
	{"loader", "src/loader.ts", api.FormatIIFE, false},
	{"engine", "src/engine.ts", api.FormatESModule, true},
	{"sw", "src/sw.ts", api.FormatIIFE, false}, // a service worker's URL is its identity: fixed
}

// Build bundles js/src. jsDir is the js/ directory; node_modules is looked up beside it (the repository root).
func Build(jsDir string) ([]Bundle, error) {
	abs, err := filepath.Abs(jsDir)
	if err != nil {
		return nil, fmt.Errorf("jsbuild: %w", err)
	}
	index := Index{}
	var out []Bundle
	for _, e := range entries {
		res := api.Build(api.BuildOptions{
			AbsWorkingDir:     abs,
			EntryPoints:       []string{e.src},
			Bundle:            true,
			Write:             false,
			Outdir:            "dist",
			EntryNames:        "[name]",
			Format:            e.format,
			Platform:          api.PlatformBrowser,
			Target:            api.ES2020,
			MinifyWhitespace:  true,
			MinifyIdentifiers: true,
			MinifySyntax:      true,
			LegalComments:     api.LegalCommentsNone,
			Charset:           api.CharsetUTF8,
			NodePaths:         []string{filepath.Join(abs, "..", "node_modules")},
			LogLevel:          api.LogLevelSilent,
		})
		if len(res.Errors) > 0 {
			msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
			return nil, fmt.Errorf("jsbuild: %s: %s", e.src, strings.Join(msgs, "\n"))
		}
		for _, f := range res.OutputFiles {
			name := filepath.Base(f.Path)
			if e.hashed {
				// Our own content hash, not esbuild's [hash]: that one also covers the inputs' paths, so the
				// same bundle got another name wherever node_modules lives elsewhere (a symlink, say).
				sum := sha256.Sum256(f.Contents)
				name = strings.TrimSuffix(name, ".js") + "-" + strings.ToUpper(base32.StdEncoding.EncodeToString(sum[:5])) + ".js"
			}
			index[e.name] = name
			out = append(out, Bundle{Name: name, Contents: f.Contents})
		}
	}
	idx, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("jsbuild: %w", err)
	}
	return append(out, Bundle{Name: "index.json", Contents: append(idx, '\n')}), nil
}
