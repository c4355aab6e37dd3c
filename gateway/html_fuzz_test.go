package gateway

import (
	"bytes"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/swarmapi"
	xhtml "golang.org/x/net/html"
)

// testLoaderTag is the tag rewritePage injects.
const testLoaderTag = `<script src="` + swarmapi.PathLoader + `" async></script>`

// testPreloadTag is what testRewriter writes before the first element it rewrites (the gateway writes its
// preloads of the manifest and the engine there).
const testPreloadTag = `<link rel="preload" href="/.swarm/manifest.json" as="fetch" crossorigin>` +
	`<link rel="modulepreload" href="/.swarm/engine-test.js">`

// testRewriter rewrites as the gateway does for http://site.test/index.html, with every same-origin URL whose
// path does not contain "small" in the swarm, so that as much of a fuzzed page as possible is rewritten.
func testRewriter(loaderTag string) *htmlRewriter {
	base, _ := url.Parse("http://site.test/index.html")
	return &htmlRewriter{base: base, loaderTag: loaderTag, preloadTag: testPreloadTag, inSwarm: func(p string) bool { return !strings.Contains(p, "small") }, move: true}
}

// rewriteDiff reports how the rewritten page out differs from the origin's page orig beyond what the rewriter
// does by design, as golang.org/x/net/html parses both with scripting on and with scripting off.
//
// Each element is identified by its namespace, name, every attribute with its value and, for <script> and
// <style>, its text: an element differing in any of these is a different element. Counting with multiplicity,
// every element of out must be an element of orig, except for exactly these allowances:
//   - an HTML <img>, <video>, <audio> or <source> may carry data-swarm-src where orig's has src, and
//     data-swarm-srcset where orig's has srcset, with the same value;
//   - a wrapper: an HTML <noscript> without attributes whose previous sibling is such an <img>, <video> or
//     <audio> carrying (itself or in a <source> child) a data-swarm attribute. With scripting on the wrapper
//     holds only text; with scripting off it holds one element, equal to that previous sibling with the
//     data-swarm attributes named back and without children other than <source> and <track>. The wrapper and
//     what it holds are not counted.
//   - at most one element equal to loaderTag's <script> (attributes exactly, no text) when loaderTag is set,
//     and at most one equal to each of testPreloadTag's <link>s.
//
// Text other than script and style, comments and the document type are not compared.
func rewriteDiff(orig, out []byte, loaderTag string) error {
	// Elements the rewriter may add once each: the loader, when asked for, and the preloads.
	extra := map[string]int{}
	for _, tag := range []string{loaderTag, testPreloadTag} {
		if tag == "" {
			continue
		}
		keys, err := tagKeys(tag)
		if err != nil {
			return err
		}
		for _, k := range keys {
			extra[k]++
		}
	}
	for _, scripting := range []bool{true, false} {
		o, err := xhtml.ParseWithOptions(bytes.NewReader(orig), xhtml.ParseOptionEnableScripting(scripting))
		if err != nil {
			return err
		}
		r, err := xhtml.ParseWithOptions(bytes.NewReader(out), xhtml.ParseOptionEnableScripting(scripting))
		if err != nil {
			return err
		}
		have := map[string]int{}
		walk(o, func(n *xhtml.Node) bool {
			if n.Type == xhtml.ElementNode {
				have[elementKey(n, false)]++
			}
			return true
		})
		extra := maps.Clone(extra)
		var bad []string
		walk(r, func(n *xhtml.Node) bool {
			if n.Type != xhtml.ElementNode {
				return true
			}
			if isWrapper(n, scripting) {
				return false
			}
			k := elementKey(n, false)
			switch m := elementKey(n, true); {
			case have[k] > 0:
				have[k]--
			case extra[k] > 0 && n.FirstChild == nil:
				extra[k]--
			case m != k && have[m] > 0:
				have[m]--
			default:
				bad = append(bad, k)
			}
			return true
		})
		if len(bad) > 0 {
			return fmt.Errorf("scripting %v: elements the origin's page does not have: %s", scripting, strings.Join(bad, ", "))
		}
	}
	return nil
}

// tagKeys are the elementKeys of the elements in tag (html, head and body left out).
func tagKeys(tag string) ([]string, error) {
	doc, err := xhtml.Parse(strings.NewReader(tag))
	if err != nil {
		return nil, err
	}
	var keys []string
	walk(doc, func(n *xhtml.Node) bool {
		if n.Type == xhtml.ElementNode && n.Data != "html" && n.Data != "head" && n.Data != "body" {
			keys = append(keys, elementKey(n, false))
		}
		return true
	})
	if len(keys) == 0 {
		return nil, fmt.Errorf("tag %q has no element", tag)
	}
	return keys, nil
}

// walk calls f on n and its descendants in document order; f returns false to skip a node's children.
func walk(n *xhtml.Node, f func(*xhtml.Node) bool) {
	if !f(n) {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// swarmable reports whether n is an element the rewriter may give data-swarm attributes.
func swarmable(n *xhtml.Node) bool {
	if n.Type != xhtml.ElementNode || n.Namespace != "" {
		return false
	}
	switch n.Data {
	case "img", "video", "audio", "source":
		return true
	}
	return false
}

func hasSwarmAttr(n *xhtml.Node) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && (a.Key == attrSwarmSrc || a.Key == attrSwarmSrcset) {
			return true
		}
	}
	return false
}

// elementKey identifies an element: namespace, name, attributes and, for script and style, text. With
// namedBack, the data-swarm attributes of a swarmable element are named as the origin named them.
func elementKey(n *xhtml.Node, namedBack bool) string {
	attrs := make([]string, 0, len(n.Attr))
	for _, a := range n.Attr {
		k := a.Key
		if namedBack && swarmable(n) && a.Namespace == "" {
			switch k {
			case attrSwarmSrc:
				k = "src"
			case attrSwarmSrcset:
				k = "srcset"
			}
		}
		attrs = append(attrs, strconv.Quote(a.Namespace+":"+k)+"="+strconv.Quote(a.Val))
	}
	slices.Sort(attrs)
	key := n.Namespace + ":" + n.Data + "[" + strings.Join(attrs, " ") + "]"
	if n.Data == "script" || n.Data == "style" {
		var text strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == xhtml.TextNode {
				text.WriteString(c.Data)
			}
		}
		key += strconv.Quote(text.String())
	}
	return key
}

// copyKey identifies an element as the wrapper's copy must hold it: elementKey named back, with its <source>
// and <track> children.
func copyKey(n *xhtml.Node) string {
	key := elementKey(n, true) + "{"
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == xhtml.ElementNode && c.Namespace == "" && (c.Data == "source" || c.Data == "track") {
			key += copyKey(c)
		}
	}
	return key + "}"
}

// isWrapper reports whether n is a <noscript> the rewriter may add (see rewriteDiff).
func isWrapper(n *xhtml.Node, scripting bool) bool {
	if n.Namespace != "" || n.Data != "noscript" || len(n.Attr) > 0 {
		return false
	}
	prev := n.PrevSibling
	if prev == nil || !swarmable(prev) || prev.Data == "source" {
		return false
	}
	rewritten := hasSwarmAttr(prev)
	for c := prev.FirstChild; c != nil && !rewritten; c = c.NextSibling {
		rewritten = swarmable(c) && c.Data == "source" && hasSwarmAttr(c)
	}
	if !rewritten {
		return false
	}
	if scripting {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != xhtml.TextNode {
				return false
			}
		}
		return true
	}
	c := n.FirstChild
	return c != nil && c.NextSibling == nil && c.Type == xhtml.ElementNode && copyKey(c) == copyKey(prev)
}

// FuzzRewriteHTML checks, for any page, that the rewritten page holds nothing the origin's page does not
// (rewriteDiff), with and without the loader injected, and that a page with nothing to rewrite passes through
// byte for byte.
func FuzzRewriteHTML(f *testing.F) {
	for _, tc := range hostilePages {
		f.Add(tc.page)
	}
	f.Add(`<p><img src="/big.jpg" alt="a &amp; b"></p>`)
	f.Add(`<video controls><source src="/movie.mp4" type="video/mp4"><track src="/t.vtt">no video</video>`)
	f.Add(`<img src="/small.png" srcset="/big.jpg 1x, /big@2x.jpg 2x">`)
	pages, _ := filepath.Glob("testdata/*.html")
	for _, p := range pages {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, page string) {
		for _, tag := range []string{"", testLoaderTag} {
			out := testRewriter(tag).rewrite([]byte(page))
			if err := rewriteDiff([]byte(page), out, tag); err != nil {
				t.Fatalf("loader %q: %v\n in: %q\nout: %q", tag, err, page, out)
			}
		}
		base, _ := url.Parse("http://site.test/index.html")
		// Outside a crowd the gateway reads every page for the files it names, and must change nothing.
		idle := &htmlRewriter{base: base, inSwarm: func(p string) bool { return !strings.Contains(p, "small") }}
		if out := idle.rewrite([]byte(page)); !bytes.Equal(out, []byte(page)) {
			t.Fatalf("not moving, but the page changed:\n in: %q\nout: %q", page, out)
		}
	})
}
