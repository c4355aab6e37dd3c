package gateway

import (
	"bytes"
	"html"
	"net/url"
	"strings"

	xhtml "golang.org/x/net/html"
)

// Attributes the loader looks for: the gateway moves a heavy asset's URL into them so that the browser does
// not fetch it over HTTP before the loader can take it from the swarm.
const (
	attrSwarmSrc    = "data-swarm-src"
	attrSwarmSrcset = "data-swarm-srcset"
)

// htmlRewriter rewrites a page's heavy assets for the loader. A browser without JavaScript sees, in a
// <noscript>, the element exactly as the origin sent it.
type htmlRewriter struct {
	base      *url.URL               // the page's URL, to resolve relative references
	inSwarm   func(path string) bool // whether a same-origin URL path is in the current version
	loaderTag string                 // injected before </head> when not empty
	out       bytes.Buffer
	rewritten int
}

// rewrite returns the page with heavy assets rewritten and, if asked, the loader injected.
func (r *htmlRewriter) rewrite(page []byte) []byte {
	z := xhtml.NewTokenizer(bytes.NewReader(page))
	injected := r.loaderTag == ""
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		raw := append([]byte(nil), z.Raw()...)
		tok := z.Token()
		switch {
		case tt == xhtml.EndTagToken && tok.Data == "head" && !injected:
			r.out.WriteString(r.loaderTag)
			injected = true
			r.out.Write(raw)
		case (tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken) && tok.Data == "img":
			if tag, ok := r.rewriteTag(tok); ok {
				r.out.WriteString(tag)
				r.out.WriteString("<noscript>")
				r.out.Write(raw)
				r.out.WriteString("</noscript>")
			} else {
				r.out.Write(raw)
			}
		case tt == xhtml.StartTagToken && (tok.Data == "video" || tok.Data == "audio"):
			r.media(z, tok, raw)
		default:
			r.out.Write(raw)
		}
	}
	if !injected {
		r.out.WriteString(r.loaderTag)
	}
	return r.out.Bytes()
}

// media rewrites a <video> or <audio> element and its <source> children as one unit, so that the noscript
// copy holds the whole original element.
func (r *htmlRewriter) media(z *xhtml.Tokenizer, start xhtml.Token, startRaw []byte) {
	var orig, next bytes.Buffer
	orig.Write(startRaw)
	changed := false
	if tag, ok := r.rewriteTag(start); ok {
		next.WriteString(tag)
		changed = true
	} else {
		next.Write(startRaw)
	}
	for depth := 1; depth > 0; {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		raw := append([]byte(nil), z.Raw()...)
		tok := z.Token()
		orig.Write(raw)
		switch {
		case tt == xhtml.StartTagToken && tok.Data == start.Data:
			depth++
		case tt == xhtml.EndTagToken && tok.Data == start.Data:
			depth--
		case (tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken) && tok.Data == "source":
			if tag, ok := r.rewriteTag(tok); ok {
				next.WriteString(tag)
				changed = true
				continue
			}
		}
		next.Write(raw)
	}
	if !changed {
		r.out.Write(orig.Bytes())
		return
	}
	r.out.Write(next.Bytes())
	r.out.WriteString("<noscript>")
	r.out.Write(orig.Bytes())
	r.out.WriteString("</noscript>")
}

// rewriteTag moves src and srcset into data-swarm-* when they name an asset in the swarm.
func (r *htmlRewriter) rewriteTag(tok xhtml.Token) (string, bool) {
	changed := false
	for i, a := range tok.Attr {
		if a.Namespace != "" {
			continue
		}
		switch {
		case a.Key == "src" && r.swarmURL(a.Val):
			tok.Attr[i].Key = attrSwarmSrc
			changed = true
		case a.Key == "srcset" && r.swarmSrcset(a.Val):
			tok.Attr[i].Key = attrSwarmSrcset
			changed = true
		}
	}
	if !changed {
		return "", false
	}
	r.rewritten++
	var b strings.Builder
	b.WriteString("<" + tok.Data)
	for _, a := range tok.Attr {
		b.WriteString(" " + a.Key + `="` + html.EscapeString(a.Val) + `"`)
	}
	b.WriteString(">")
	return b.String(), true
}

func (r *htmlRewriter) swarmURL(ref string) bool {
	u, err := r.base.Parse(strings.TrimSpace(ref))
	if err != nil || u.Scheme != r.base.Scheme || u.Host != r.base.Host {
		return false
	}
	return r.inSwarm(u.RequestURI())
}

// swarmSrcset reports whether any candidate of a srcset is in the swarm.
func (r *htmlRewriter) swarmSrcset(srcset string) bool {
	for _, cand := range strings.Split(srcset, ",") {
		if f := strings.Fields(cand); len(f) > 0 && r.swarmURL(f[0]) {
			return true
		}
	}
	return false
}
