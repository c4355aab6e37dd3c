package deptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/swarmgate/swarmgate"

// maxLines bounds a Go file: past it, a file holds more than one concern.
const maxLines = 800

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath                string
	Name                      string
	Dir                       string
	Doc                       string
	Deps                      []string // every package it depends on, directly or not (test files excluded)
	GoFiles                   []string
	TestGoFiles, XTestGoFiles []string
}

func list(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[rel(p.ImportPath)] = &p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	return pkgs
}

// rel is an import path relative to the module ("" for a package outside it).
func rel(importPath string) string {
	if importPath == module {
		return "."
	}
	r, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	return r
}

// under reports whether p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// ours is the module's packages p depends on (without tests), relative.
func ours(p *pkg) []string {
	var out []string
	for _, d := range p.Deps {
		if r := rel(d); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// The roles and the parts they share.
var (
	siteRole   = []string{"gateway"}                                    // the site owner's: proxy, catalogue, manifest, coordinator
	helperRole = []string{"webseed"}                                    // the cooperating servers'
	leaves     = []string{"tracker", "steer", "federation", "swarmapi"} // import nothing else of ours
	shared     = []string{"seeder", "uplink", "certs", "tracker", "steer", "federation", "swarmapi", "web", "js"}
	harnesses  = []string{"bench", "internal/loopfed", "internal/examplesite"} // for the CLI's demo and benchmarks only
	testOnly   = []string{"internal/browsertest", "internal/pebbletest", "internal/testlog", "internal/testutil", "internal/deptest", "internal/nginxtest", "internal/firefoxtest"}
)

func anyUnder(p string, dirs []string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// TestDependencyRules fails when an import breaks the tree's architecture.
func TestDependencyRules(t *testing.T) {
	pkgs := list(t)
	for name, p := range pkgs {
		deps := ours(p)
		for _, d := range deps {
			switch {
			case anyUnder(name, helperRole) && anyUnder(d, siteRole):
				t.Errorf("%s imports %s: the helper role never imports the site role", name, d)
			case anyUnder(name, leaves) && !under(d, name):
				t.Errorf("%s imports %s: %s imports nothing else of swarmgate's", name, d, name)
			case anyUnder(name, shared) && anyUnder(d, append(siteRole, helperRole...)):
				t.Errorf("%s imports %s: a part both roles share imports neither role", name, d)
			case under(name, "cmd"):
				// the composition root: it may wire anything
			case anyUnder(d, harnesses) && !anyUnder(name, harnesses):
				t.Errorf("%s imports %s: harnesses serve the CLI's demo and benchmarks, not the product", name, d)
			case anyUnder(d, testOnly) && !anyUnder(name, harnesses) && !anyUnder(name, testOnly):
				// browsertest drives Chromium for the benchmarks too, which the CLI runs
				t.Errorf("%s imports %s: test helpers stay out of the product", name, d)
			case under(d, "cmd"):
				t.Errorf("%s imports %s: nothing imports the CLI", name, d)
			}
		}
	}
	// The rules must bite: the roles and the leaves exist and are what the rules name.
	for _, name := range append(append(append([]string{}, siteRole...), helperRole...), leaves...) {
		if pkgs[name] == nil {
			t.Errorf("no package %s: update the rules with the tree", name)
		}
	}
	if !contains(ours(pkgs["gateway"]), "webseed") || !contains(ours(pkgs["webseed"]), "seeder") {
		t.Errorf("gateway should carry the helper role and webseed use the shared seeder: the rules no longer describe the tree")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPackagesNamedAsDirectories: a package's directory is its name (commands are main), and it says what it
// owns in a doc comment.
func TestPackagesNamedAsDirectories(t *testing.T) {
	for name, p := range list(t) {
		if p.Name == "main" {
			continue
		}
		if path.Base(p.ImportPath) != p.Name {
			t.Errorf("%s is package %s: name the directory as the package", name, p.Name)
		}
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment", name)
		}
	}
}

// TestFileLength: no Go file over maxLines lines.
func TestFileLength(t *testing.T) {
	for name, p := range list(t) {
		files := append(append(append([]string{}, p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles...)
		for _, f := range files {
			n, err := lines(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if n > maxLines {
				t.Errorf("%s/%s has %d lines; split it below %d", name, f, n, maxLines)
			}
		}
	}
}

func lines(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// TestREADMELayout: the README's "What is here" table names every package, and nothing that is not a
// package or a directory of the tree.
func TestREADMELayout(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## What is here")
	if !ok {
		t.Fatal(`README.md has no "What is here" section`)
	}
	table, _, _ = strings.Cut(table, "\n\n## ")
	named := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, f := range strings.Split(first, ",") {
			p := strings.TrimSuffix(strings.Trim(strings.TrimSpace(f), "`"), "/")
			named[p] = true
			if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
				t.Errorf("README names %s, which is not in the tree", p)
			}
		}
	}
	for name := range list(t) {
		if !named[name] {
			t.Errorf("README's layout table does not name package %s", name)
		}
	}
}
