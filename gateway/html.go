package gateway

import (
	"bytes"
	"html"
	"io"
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

// htmlRewriter rewrites a page's heavy assets for the loader: an <img>, <video> or <audio> whose src or srcset
// (or a <source> child's) names an asset in the swarm gets them as data-swarm-src and data-swarm-srcset, followed
// by a <noscript> copy of the element, with its src and srcset, for browsers without JavaScript.
//
// The page is never reparsed and reserialized: everything the rewriter does not change passes through byte for
// byte. What it writes itself it serializes from tokens, attribute values escaped, so that no origin bytes land
// in a context that reads them differently (the <noscript> copy is raw text to a browser running scripts).
// It rewrites and inserts only where htmlContext is sure the browser, with scripting on or off, reads markup in
// the HTML namespace; anywhere else, and for the rest of a page that leaves it unsure, it passes bytes through.
type htmlRewriter struct {
	base      *url.URL               // the page's URL, to resolve relative references
	inSwarm   func(path string) bool // whether a same-origin URL path is in the current version
	move      bool                   // whether elements in the swarm are rewritten, or only named
	loaderTag string                 // injected before </head>, or at the end, when not empty
	// preloadTag is written once, just before the first element rewritten, when not empty: preloads of the
	// manifest and the engine, so that the browser fetches them beside the loader rather than each after the
	// one before (a page not rewritten needs neither at once).
	preloadTag string
	// headTag, when set, is given the files of the elements rewritten (their src, in the page's order) once
	// the page has been read, and its answer goes just after preloadTag (see head.go).
	headTag   func([]headRef) string
	out       bytes.Buffer
	rewritten int      // elements rewritten
	preloaded int      // where preloadTag ends in out
	srcs      []string // the swarm paths in the src attributes of the element being rewritten
	heads     []headRef
	// named lists the swarm paths in the src attributes of the page's <img>, <video>, <audio> and their
	// <source> children, in document order, whether they were rewritten or not (see pageorder.go).
	named []string
}

// rewrite returns the page with heavy assets rewritten and, if asked, the loader injected. A page where the
// loader cannot be put where a browser runs it is returned unchanged: rewritten assets would never load.
func (r *htmlRewriter) rewrite(page []byte) []byte {
	var (
		c        htmlContext
		m        *mediaRewrite
		last     []byte // the last token's bytes, to tell whether markup may follow the page's end
		injected = r.loaderTag == ""
		z        = xhtml.NewTokenizer(bytes.NewReader(page))
	)
	r.out.Grow(len(page) + len(r.loaderTag) + len(r.preloadTag))
	for {
		z.AllowCDATA(len(c.foreign) > 0)
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		raw := append([]byte(nil), z.Raw()...)
		last = raw
		if c.lost {
			r.out.Write(raw)
			continue
		}
		tok := z.Token()
		if m != nil {
			if m.take(r, tt, tok, raw) {
				if m.done {
					m = nil
				}
				continue
			}
			r.out.Write(m.orig.Bytes()) // the element stays as the origin wrote it
			m = nil
		}
		here := c.markup()
		c.see(z, tt, tok, raw)
		switch {
		case !here:
			r.out.Write(raw)
		case tt == xhtml.EndTagToken && tok.Data == "head" && !injected:
			r.out.WriteString(r.loaderTag)
			injected = true
			r.out.Write(raw)
		case (tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken) && tok.Data == "img":
			r.srcs = nil
			if tag, cp, changed := r.tagPair(tok, true); changed {
				r.changed(false)
				r.out.WriteString(tag + "<noscript>" + cp + "</noscript>")
			} else {
				r.out.Write(raw)
			}
		case tt == xhtml.StartTagToken && (tok.Data == "video" || tok.Data == "audio"):
			r.srcs = nil
			if m = r.startMedia(tok, raw); m == nil {
				r.out.Write(raw)
			}
		default:
			r.out.Write(raw)
		}
	}
	if m != nil {
		r.out.Write(m.orig.Bytes())
	}
	tail := z.Raw() // an unfinished tag at the end, which browsers drop
	if !injected {
		if !c.markup() || !markupMayFollow(last, r.loaderTag) {
			return append([]byte(nil), page...)
		}
		r.out.WriteString(r.loaderTag)
	}
	r.out.Write(tail)
	if r.headTag == nil || r.rewritten == 0 {
		return r.out.Bytes()
	}
	out := r.out.Bytes()
	tag := r.headTag(r.heads)
	return append(append(append(make([]byte, 0, len(out)+len(tag)), out[:r.preloaded]...), tag...), out[r.preloaded:]...)
}

// changed counts an element rewritten, about to be written out; the first is preceded by preloadTag. media
// says whether it is a video or audio element.
func (r *htmlRewriter) changed(media bool) {
	if r.rewritten == 0 {
		r.out.WriteString(r.preloadTag)
		r.preloaded = r.out.Len()
	}
	r.rewritten++
	for _, p := range r.srcs {
		r.heads = append(r.heads, headRef{p, media})
	}
	r.srcs = nil
}

// mediaRewrite holds a <video> or <audio> element while its children are read: it is rewritten only if it
// holds nothing but <source> and <track> elements, text and comments, so that it ends at its end tag in any
// parser and its <noscript> copy, which leaves out the text and comments, can hold nothing else.
type mediaRewrite struct {
	name       string
	orig, next bytes.Buffer    // the origin's bytes, the rewritten bytes
	copy       strings.Builder // the noscript copy
	changed    bool
	done       bool
}

func (r *htmlRewriter) startMedia(start xhtml.Token, raw []byte) *mediaRewrite {
	tag, cp, changed := r.tagPair(start, true)
	if cp == "" {
		return nil
	}
	m := &mediaRewrite{name: start.Data, changed: changed}
	m.orig.Write(raw)
	if changed {
		m.next.WriteString(tag)
	} else {
		m.next.Write(raw)
	}
	m.copy.WriteString(cp)
	return m
}

// take adds a token inside the element and reports whether it may be there; at the element's end tag it
// writes the element out and sets done.
func (m *mediaRewrite) take(r *htmlRewriter, tt xhtml.TokenType, tok xhtml.Token, raw []byte) bool {
	switch {
	case tt == xhtml.TextToken || tt == xhtml.CommentToken:
		m.next.Write(raw)
	case (tt == xhtml.StartTagToken || tt == xhtml.SelfClosingTagToken) && (tok.Data == "source" || tok.Data == "track"):
		tag, cp, changed := r.tagPair(tok, tok.Data == "source")
		switch {
		case cp == "":
			return false
		case changed:
			m.next.WriteString(tag)
			m.changed = true
		default:
			m.next.Write(raw)
		}
		m.copy.WriteString(cp)
	case tt == xhtml.EndTagToken && tok.Data == m.name:
		m.done = true
		if !m.changed {
			m.orig.Write(raw)
			r.out.Write(m.orig.Bytes())
			return true
		}
		r.changed(true)
		r.out.Write(m.next.Bytes())
		r.out.Write(raw)
		r.out.WriteString("<noscript>" + m.copy.String() + "</" + m.name + "></noscript>")
		return true
	default:
		return false
	}
	m.orig.Write(raw)
	return true
}

// tagPair serializes a start tag twice: with src and srcset moved into data-swarm-* when heavy is set (the tag
// is a heavy element's or its source's), the rewriter moves, and they name an asset in the swarm; and as the
// origin wrote it, for the noscript copy. changed reports whether anything moved; a heavy element's src in
// the swarm is added to named either way. copy is empty when the tag cannot be serialized safely or already
// carries data-swarm-* (the origin, or a gateway before this one, rewrote it): such an element is left as it is.
//
// Attribute values are escaped, so the copy holds no "<" outside its tags and no "</noscript" can end the
// <noscript> early. Later duplicates of an attribute are dropped, as parsers drop them: renaming the first src
// must not leave a second one in effect.
func (r *htmlRewriter) tagPair(tok xhtml.Token, heavy bool) (tag, copy string, changed bool) {
	attrs := make([]xhtml.Attribute, 0, len(tok.Attr))
	seen := make(map[string]bool, len(tok.Attr))
	for _, a := range tok.Attr {
		if a.Key == attrSwarmSrc || a.Key == attrSwarmSrcset || a.Key == "" || strings.ContainsAny(a.Key, "\"'<=") {
			return "", "", false
		}
		if !seen[a.Key] {
			seen[a.Key] = true
			attrs = append(attrs, a)
		}
	}
	copy = serializeTag(tok.Data, attrs)
	if !heavy {
		return "", copy, false
	}
	for i, a := range attrs {
		switch {
		case a.Key == "src":
			if p := r.swarmPath(a.Val); p != "" && r.inSwarm(p) { // resolved once: every page is read, moved or not
				r.named = append(r.named, p)
				if r.move {
					attrs[i].Key = attrSwarmSrc
					changed = true
					r.srcs = append(r.srcs, p)
				}
			}
		case a.Key == "srcset" && r.move && r.swarmSrcset(a.Val):
			attrs[i].Key = attrSwarmSrcset
			changed = true
		}
	}
	if !changed {
		return "", copy, false
	}
	return serializeTag(tok.Data, attrs), copy, true
}

// serializeTag writes a start tag with every attribute value quoted and escaped.
func serializeTag(name string, attrs []xhtml.Attribute) string {
	var b strings.Builder
	b.WriteString("<" + name)
	for _, a := range attrs {
		b.WriteString(" " + a.Key)
		if a.Val != "" {
			b.WriteString(`="` + html.EscapeString(a.Val) + `"`)
		}
	}
	b.WriteString(">")
	return b.String()
}

// swarmURL reports whether ref names a same-origin asset in the swarm. Anything else — another origin, a
// javascript: or data: URL, a reference Go and browsers might resolve differently — is left alone.
func (r *htmlRewriter) swarmURL(ref string) bool {
	p := r.swarmPath(ref)
	return p != "" && r.inSwarm(p)
}

// swarmPath returns the URL path (with query) that ref names on the page's origin, "" for anything else.
func (r *htmlRewriter) swarmPath(ref string) string {
	ref = strings.Trim(ref, "\t\n\f\r ")
	if strings.Contains(ref, `\`) { // browsers read it as "/" in http(s) URLs, Go does not
		return ""
	}
	u, err := r.base.Parse(ref)
	if err != nil || u.Scheme != r.base.Scheme || u.Host != r.base.Host || u.Opaque != "" {
		return ""
	}
	return u.RequestURI()
}

// swarmSrcset reports whether any candidate of a srcset is in the swarm.
func (r *htmlRewriter) swarmSrcset(srcset string) bool {
	for _, u := range srcsetURLs(srcset) {
		if r.swarmURL(u) {
			return true
		}
	}
	return false
}

// srcsetURLs returns the URLs of a srcset's image candidates as the HTML standard's srcset parsing finds them:
// a URL runs to the next whitespace (commas inside it, as in data: URLs, belong to it) less trailing commas,
// and its descriptors run to the next comma outside parentheses.
func srcsetURLs(srcset string) []string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
	var urls []string
	for i := 0; i < len(srcset); {
		for i < len(srcset) && (isSpace(srcset[i]) || srcset[i] == ',') {
			i++
		}
		j := i
		for j < len(srcset) && !isSpace(srcset[j]) {
			j++
		}
		u := srcset[i:j]
		i = j
		if strings.HasSuffix(u, ",") {
			u = strings.TrimRight(u, ",")
		} else {
			for paren := false; i < len(srcset); i++ {
				if c := srcset[i]; c == '(' {
					paren = true
				} else if c == ')' {
					paren = false
				} else if c == ',' && !paren {
					i++
					break
				}
			}
		}
		if u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// markupMayFollow reports whether bytes appended after a page whose last token is last are read as markup:
// not as part of an unfinished comment, or of a "<" or "</" the token left open.
func markupMayFollow(last []byte, appended string) bool {
	if len(last) == 0 {
		return true
	}
	z := xhtml.NewTokenizer(io.MultiReader(bytes.NewReader(last), strings.NewReader(appended)))
	for n := 0; ; {
		if z.Next() == xhtml.ErrorToken {
			return false
		}
		if n += len(z.Raw()); n >= len(last) {
			return n == len(last)
		}
	}
}

// htmlContext follows, from the tokens alone, where an HTML parser is, closely enough to tell where the rewriter
// may rewrite an element or insert one. golang.org/x/net/html's tokenizer reads the page as a browser running
// scripts outside foreign content does; a parser differs where the tree decides how the next bytes are read:
// inside SVG and MathML (no raw text, CDATA sections, elements that break out), inside a <noscript> with
// scripting off (markup, not text), in <select> and <frameset> (tags ignored, so no raw text). htmlContext
// tracks the first, checks the second and gives up on the others: once it is lost, nothing more is rewritten.
type htmlContext struct {
	foreign  []foreignElement // open SVG and MathML elements, innermost last
	inSelect bool
	template int    // open <template>s: what is rewritten inside never reaches the loader
	rawText  string // the element whose text the tokenizer is reading as raw text or RCDATA
	lost     bool
}

type foreignElement struct {
	name        string
	integration bool // its content is HTML
}

// markup reports whether the rewriter may rewrite or insert an HTML element here.
func (c *htmlContext) markup() bool {
	return !c.lost && len(c.foreign) == 0 && !c.inSelect && c.template == 0 && c.rawText == ""
}

// see moves past a token; it runs before the tokenizer reads the next one, so that it can keep the tokenizer
// out of raw text where a parser would.
func (c *htmlContext) see(z *xhtml.Tokenizer, tt xhtml.TokenType, tok xhtml.Token, raw []byte) {
	name := tok.Data
	switch tt {
	case xhtml.TextToken:
		if c.rawText == "noscript" && !plainNoscript(raw) {
			c.lost = true
		}
	case xhtml.EndTagToken:
		switch {
		case c.rawText != "":
			c.rawText = "" // the tokenizer ends raw text only at its element's end tag
		case len(c.foreign) > 0:
			c.foreignEnd(name)
		case name == "select":
			c.inSelect = false
		case name == "template" && c.template > 0:
			c.template--
		}
	case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
		switch {
		case len(c.foreign) > 0:
			c.foreignStart(z, tt, name)
			return
		case c.inSelect:
			switch name {
			case "option", "optgroup", "hr", "script":
			case "select", "input", "keygen", "textarea":
				c.inSelect = false // they end the select
			default:
				c.lost = true
				return
			}
		case name == "svg" || name == "math":
			if tt == xhtml.StartTagToken {
				c.foreign = append(c.foreign, foreignElement{name: name})
			}
		case name == "select":
			c.inSelect = true
		case name == "template":
			c.template++
		case name == "frameset":
			c.lost = true
			return
		}
		if rawTextElement(name) {
			c.rawText = name
		}
	}
}

// foreignStart follows a start tag in SVG or MathML. An element that breaks out of foreign content, or a start
// tag inside an integration point (read as HTML there), leaves the tree beyond what a token stream can follow:
// lost. Otherwise it is a foreign element, and a raw-text name (<style>, <title>, <script> in SVG) holds
// markup, not text.
func (c *htmlContext) foreignStart(z *xhtml.Tokenizer, tt xhtml.TokenType, name string) {
	if c.foreign[len(c.foreign)-1].integration || breaksOutOfForeign(name) {
		c.lost = true
		return
	}
	if rawTextElement(name) {
		z.NextIsNotRawText()
	}
	if tt == xhtml.StartTagToken {
		c.foreign = append(c.foreign, foreignElement{name: name, integration: integrationPoint(name)})
	}
}

// foreignEnd follows an end tag in SVG or MathML: a parser closes the innermost open element of that name, or,
// with none, treats the tag as HTML, which may close the foreign content or not: lost.
func (c *htmlContext) foreignEnd(name string) {
	for i := len(c.foreign) - 1; i >= 0; i-- {
		if c.foreign[i].name == name {
			c.foreign = c.foreign[:i]
			return
		}
	}
	c.lost = true
}

// plainNoscript reports whether a <noscript>'s text, which a browser with scripting off reads as markup, ends
// in markup, so that such a browser ends the element where the tokenizer did. Anything whose reading depends
// on the tree (foreign content, a nested <noscript>, <select>, <frameset>) counts as not plain.
func plainNoscript(text []byte) bool {
	low := bytes.ToLower(text)
	for _, s := range []string{"<svg", "<math", "<noscript", "<select", "<frameset"} {
		if bytes.Contains(low, []byte(s)) {
			return false
		}
	}
	return markupMayFollow(text, "</noscript>")
}

// rawTextElement reports whether the tokenizer reads an HTML element's content as raw text or RCDATA.
func rawTextElement(name string) bool {
	switch name {
	case "iframe", "noembed", "noframes", "noscript", "plaintext", "script", "style", "textarea", "title", "xmp":
		return true
	}
	return false
}

// integrationPoint reports whether an SVG or MathML element of this name may hold HTML (its namespace is not
// checked: counting more elements as integration points only gives up more often).
func integrationPoint(name string) bool {
	switch name {
	case "foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext", "annotation-xml":
		return true
	}
	return false
}

// breaksOutOfForeign reports whether a start tag closes foreign content (<font> only with some attributes, but
// any <font> counts here).
func breaksOutOfForeign(name string) bool {
	switch name {
	case "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed",
		"h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr",
		"ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u",
		"ul", "var", "font":
		return true
	}
	return false
}
