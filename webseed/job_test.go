package webseed

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

const testPieceLength = 16 << 10

// infoBytes bencodes a multi-file info dictionary with as many (zero) piece hashes as the files need.
func infoBytes(t testing.TB, name string, files ...metainfo.FileInfo) []byte {
	t.Helper()
	return infoBytesWith(t, metainfo.Info{Name: name}, files...)
}

// infoBytesWith is infoBytes for an info dictionary with more fields set than its name.
func infoBytesWith(t testing.TB, info metainfo.Info, files ...metainfo.FileInfo) []byte {
	t.Helper()
	info.PieceLength, info.Files = testPieceLength, files
	var total int64
	for _, f := range files {
		total += f.Length
	}
	info.Pieces = make([]byte, 20*max(1, (total+testPieceLength-1)/testPieceLength))
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileInfo(length int64, path ...string) metainfo.FileInfo {
	return metainfo.FileInfo{Length: length, Path: path}
}

// padNamed is padding of length under the name of padding of another length.
func padNamed(length, named int64) metainfo.FileInfo {
	f := pad(length)
	f.Path = []string{".pad", itoa(named)}
	return f
}

func pad(length int64) metainfo.FileInfo {
	f := fileInfo(length, ".pad", itoa(length))
	f.Attr = "p"
	return f
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// jobFor is a job carrying info, named as info says.
func jobFor(info []byte, version string) Assignment {
	origin, _ := url.Parse("https://origin.example")
	return Assignment{Site: "Launch.Example.", Version: version, InfoHash: metainfo.HashBytes(info), InfoBytes: info, Origin: origin}
}

// checkJobCases are info dictionaries checkJob must accept or refuse; the fuzz corpus starts from them.
func checkJobCases(t testing.TB) []struct {
	name, version string
	info          []byte
	ok            bool
} {
	v := "site-1"
	return []struct {
		name, version string
		info          []byte
		ok            bool
	}{
		{"valid", v, infoBytes(t, v, fileInfo(100, "js", "app.js"), pad(testPieceLength-100), fileInfo(10, "img.png?v=2")), true},
		{"dot-dot", v, infoBytes(t, v, fileInfo(100, "..", "etc")), false},
		{"empty component", v, infoBytes(t, v, fileInfo(100, "a", "", "b")), false},
		{"slash in component", v, infoBytes(t, v, fileInfo(100, "a/b")), false},
		{"backslash in component", v, infoBytes(t, v, fileInfo(100, `..\b`)), false},
		{"nul in component", v, infoBytes(t, v, fileInfo(100, "a\x00")), false},
		{"not padding in .pad", v, infoBytes(t, v, fileInfo(100, ".pad", "100")), false},
		{"twice", v, infoBytes(t, v, fileInfo(100, "a"), fileInfo(100, "a")), false},
		// Files ending alike need as much padding: BEP 47 names both pads alike.
		{"same padding twice", v, infoBytes(t, v, fileInfo(100, "a"), pad(testPieceLength-100), fileInfo(100, "b"),
			pad(testPieceLength-100), fileInfo(10, "c")), true},
		{"one padding name, two lengths", v, infoBytes(t, v, fileInfo(100, "a"), pad(testPieceLength-100), fileInfo(50, "b"),
			padNamed(testPieceLength-50, testPieceLength-100), fileInfo(10, "c")), false},
		{"padding name as a file", v, infoBytes(t, v, fileInfo(100, "a"), pad(testPieceLength-100), fileInfo(testPieceLength-100, ".pad", itoa(testPieceLength-100))), false},
		{"no files", v, infoBytes(t, v), false},
		{"name is not the version", v, infoBytes(t, "site-2", fileInfo(100, "a")), false},
		{"name climbs", "..", infoBytes(t, "..", fileInfo(100, "a")), false},
		{"negative length", v, infoBytes(t, v, fileInfo(-5, "a")), false},
		{"not bencode", v, []byte("d4:name"), false},
		// The client stores files by their UTF-8 names; the helper serves and proves them by the plain ones.
		{"utf-8 name of its own", v, infoBytesWith(t, metainfo.Info{Name: v, NameUtf8: "other"}, fileInfo(100, "a")), false},
		{"utf-8 name the same", v, infoBytesWith(t, metainfo.Info{Name: v, NameUtf8: v}, fileInfo(100, "a")), true},
		{"utf-8 path of its own", v, infoBytes(t, v, metainfo.FileInfo{Length: 100, Path: []string{"a"}, PathUtf8: []string{"b"}}), false},
		{"utf-8 path the same", v, infoBytes(t, v, metainfo.FileInfo{Length: 100, Path: []string{"a"}, PathUtf8: []string{"a"}}), true},
	}
}

func TestCheckJob(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range checkJobCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			j := jobFor(tc.info, tc.version)
			_, err := checkJob(&j, dir)
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadJob) {
				t.Fatalf("err %v is not ErrBadJob", err)
			}
		})
	}

	// What a valid job becomes.
	info := infoBytes(t, "site-1", fileInfo(100, "js", "app.js"), pad(testPieceLength-100), fileInfo(10, "img.png?v=2"),
		fileInfo(10, "data"))
	j := jobFor(info, "site-1")
	j.Files = map[string]FileMeta{"/data": {ContentType: "application/json"}}
	j.First = []string{"/img.png?v=2", "/missing.png", "/js/app.js", "/.pad/" + itoa(testPieceLength-100)}
	v, err := checkJob(&j, dir)
	if err != nil {
		t.Fatal(err)
	}
	if j.Site != "launch.example" {
		t.Fatalf("site %q", j.Site)
	}
	if v.size != testPieceLength+20 || len(v.files) != 3 || v.pads[".pad/"+itoa(testPieceLength-100)] != testPieceLength-100 {
		t.Fatalf("version %+v", v)
	}
	for p, ct := range map[string]string{"/js/app.js": "text/javascript; charset=utf-8", "/img.png?v=2": "image/png",
		"/data": "application/json"} {
		f := v.files[p]
		if f == nil || f.contentType != ct {
			t.Fatalf("%s: %+v, want type %q", p, f, ct)
		}
		if v.paths[strings.TrimPrefix(p, "/")] != f {
			t.Fatalf("%s not indexed by torrent path", p)
		}
	}
	if got := v.files["/js/app.js"].disk; got != filepath.Join(dir, "site-1", "js", "app.js") {
		t.Fatalf("disk path %q", got)
	}
	// The files to fetch first, by torrent path, without those the version does not have (padding is none).
	if want := []string{"img.png?v=2", "js/app.js"}; !slices.Equal(v.first, want) {
		t.Fatalf("first %q, want %q", v.first, want)
	}
	j.First = make([]string, maxFiles+1)
	if _, err := checkJob(&j, dir); !errors.Is(err, ErrBadJob) {
		t.Fatalf("%d files to fetch first: err %v, want ErrBadJob", len(j.First), err)
	}
}

// FuzzCheckJob: whatever info dictionary a gateway sends, checkJob does not panic, and what it accepts stays
// inside the job's directory and adds up.
func FuzzCheckJob(f *testing.F) {
	for _, tc := range checkJobCases(f) {
		f.Add(tc.info)
	}
	const dir = "/data/job"
	f.Fuzz(func(t *testing.T, info []byte) {
		var probe struct {
			Name string `bencode:"name"`
		}
		_ = bencode.Unmarshal(info, &probe)
		j := jobFor(info, probe.Name)
		v, err := checkJob(&j, dir)
		if err != nil {
			return
		}
		var sum int64
		for _, f := range v.order {
			if !strings.HasPrefix(f.disk, dir+string(os.PathSeparator)) || filepath.Clean(f.disk) != f.disk {
				t.Fatalf("file %q lands at %q", f.urlPath, f.disk)
			}
			sum += f.size
		}
		for _, fi := range v.info.Files { // padding, each occurrence (names repeat: v.pads holds each once)
			if strings.Contains(fi.Attr, "p") {
				if v.pads[strings.Join(fi.Path, "/")] != fi.Length {
					t.Fatalf("padding %q of %d bytes served as %d", fi.Path, fi.Length, v.pads[strings.Join(fi.Path, "/")])
				}
				sum += fi.Length
			}
		}
		if sum != v.size || v.size != v.info.TotalLength() {
			t.Fatalf("sizes: %d, %d, %d", sum, v.size, v.info.TotalLength())
		}
	})
}
