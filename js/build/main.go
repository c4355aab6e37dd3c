// Command build writes the browser bundles to js/dist (run by `go generate ./js`) and prints their sizes.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/swarmgate/swarmgate/js/jsbuild"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	bundles, err := jsbuild.Build(".")
	if err != nil {
		return err
	}
	old, _ := filepath.Glob("dist/*")
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, b := range bundles {
		if err := os.WriteFile(filepath.Join("dist", b.Name), b.Contents, 0o644); err != nil {
			return err
		}
		fmt.Printf("js/dist/%-28s %8d bytes, %7d gzipped\n", b.Name, len(b.Contents), b.GzipSize())
	}
	return nil
}
