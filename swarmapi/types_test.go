package swarmapi_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/swarmapi"
)

var update = flag.Bool("update", false, "rewrite js/src/swarmapi.ts from types.go")

const tsFile = "../js/src/swarmapi.ts"

// TestTypeScriptCurrent checks that the browser code's types are the ones generated from types.go, so the
// Go and TypeScript sides of the wire agree (tsc then checks the code that uses them).
func TestTypeScriptCurrent(t *testing.T) {
	want, err := generateTS("types.go")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(tsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(tsFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is missing or stale (%v): go test ./swarmapi -update", tsFile, err)
	}
}

// TestGeneratorCoversEveryField guards the generator itself: every exported type of the package appears in
// the TypeScript with every JSON field, optional exactly when omitempty.
func TestGeneratorCoversEveryField(t *testing.T) {
	ts, err := generateTS("types.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{swarmapi.Manifest{}, swarmapi.ManifestFile{}, swarmapi.ICEServer{}, swarmapi.Webseeds{},
		swarmapi.StatsReport{}, swarmapi.Job{}, swarmapi.JobFile{}} {
		typ := reflect.TypeOf(v)
		body, ok := tsInterface(string(ts), typ.Name())
		if !ok {
			t.Errorf("no interface %s in the TypeScript", typ.Name())
			continue
		}
		for i := range typ.NumField() {
			name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			sep := ": "
			if strings.Contains(opts, "omitempty") {
				sep = "?: "
			}
			if !strings.Contains(body, "\n  "+name+sep) {
				t.Errorf("%s.%s: no field %q%s in its interface", typ.Name(), typ.Field(i).Name, name, sep)
			}
		}
	}
}

func TestFederationPath(t *testing.T) {
	if federation.Path != swarmapi.PathFederation {
		t.Fatalf("federation.Path %q, swarmapi.PathFederation %q", federation.Path, swarmapi.PathFederation)
	}
}

// tsInterface returns the body of the interface name in ts.
func tsInterface(ts, name string) (string, bool) {
	_, rest, ok := strings.Cut(ts, "export interface "+name+" {")
	if !ok {
		return "", false
	}
	body, _, ok := strings.Cut(rest, "\n}")
	return body, ok
}

// generateTS writes the TypeScript interfaces of the struct types declared in the Go file, with their
// comments.
func generateTS(file string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("// Code generated from swarmapi/types.go by `go test ./swarmapi -update`; DO NOT EDIT.\n")
	b.WriteString("// The JSON documents of swarmgate's wire contract (see the Go package swarmapi).\n")
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return nil, fmt.Errorf("%s: only struct types can cross the wire", ts.Name.Name)
			}
			b.WriteString("\n")
			writeComment(&b, "", gd.Doc)
			fmt.Fprintf(&b, "export interface %s {\n", ts.Name.Name)
			for _, fld := range st.Fields.List {
				if fld.Tag == nil || len(fld.Names) != 1 {
					return nil, fmt.Errorf("%s: every field needs a name and a json tag", ts.Name.Name)
				}
				tag := reflect.StructTag(strings.Trim(fld.Tag.Value, "`")).Get("json")
				name, opts, _ := strings.Cut(tag, ",")
				typ, err := tsType(fld.Type)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", ts.Name.Name, fld.Names[0].Name, err)
				}
				opt := ""
				if strings.Contains(opts, "omitempty") {
					opt = "?"
				}
				writeComment(&b, "  ", fld.Doc)
				fmt.Fprintf(&b, "  %s%s: %s", name, opt, typ)
				if fld.Comment != nil {
					fmt.Fprintf(&b, " // %s", strings.TrimSpace(fld.Comment.Text()))
				}
				b.WriteString("\n")
			}
			b.WriteString("}\n")
		}
	}
	return b.Bytes(), nil
}

func writeComment(b *bytes.Buffer, indent string, g *ast.CommentGroup) {
	if g == nil {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(g.Text(), "\n"), "\n") {
		fmt.Fprintf(b, "%s// %s\n", indent, line)
	}
}

// tsType maps the Go types the wire uses to TypeScript's.
func tsType(e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "string":
			return "string", nil
		case "bool":
			return "boolean", nil
		case "int", "int64", "float64":
			return "number", nil
		}
		if e.IsExported() {
			return e.Name, nil // a type of this file
		}
	case *ast.ArrayType:
		if id, ok := e.Elt.(*ast.Ident); ok && id.Name == "byte" {
			return "string", nil // encoding/json: base64
		}
		elt, err := tsType(e.Elt)
		return elt + "[]", err
	case *ast.MapType:
		if k, ok := e.Key.(*ast.Ident); !ok || k.Name != "string" {
			break
		}
		v, err := tsType(e.Value)
		return "Record<string, " + v + ">", err
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "http" && e.Sel.Name == "Header" {
			return "Record<string, string[]>", nil
		}
	}
	return "", fmt.Errorf("no TypeScript type for %T", e)
}
