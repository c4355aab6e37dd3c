package federation

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: made on first start
	key, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != ed25519.SeedSize {
		t.Errorf("key file is %d bytes, want %d", fi.Size(), ed25519.SeedSize)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, again) {
		t.Error("second start made a new key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d files, want only the key", len(entries))
	}
	other, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(key, other) {
		t.Error("two servers got the same key")
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  error
		unix  bool // permissions mean nothing on Windows
	}{
		{name: "short", want: ErrKeyFile, setup: func(t *testing.T, path string) {
			writeFile(t, path, make([]byte, 31), 0o600)
		}},
		{name: "long", want: ErrKeyFile, setup: func(t *testing.T, path string) {
			writeFile(t, path, make([]byte, 64), 0o600)
		}},
		{name: "empty", want: ErrKeyFile, setup: func(t *testing.T, path string) {
			writeFile(t, path, nil, 0o600)
		}},
		{name: "directory", want: ErrKeyFile, setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "world-readable", want: ErrKeyPermissions, unix: true, setup: func(t *testing.T, path string) {
			writeFile(t, path, make([]byte, 32), 0o644)
		}},
		{name: "group-readable", want: ErrKeyPermissions, unix: true, setup: func(t *testing.T, path string) {
			writeFile(t, path, make([]byte, 32), 0o640)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unix && runtime.GOOS == "windows" {
				t.Skip("no Unix permissions")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			tc.setup(t, path)
			key, err := LoadOrCreateKey(dir)
			if !errors.Is(err, tc.want) {
				t.Fatalf("LoadOrCreateKey = %v, %v; want %v", key, err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestPublicKeyText(t *testing.T) {
	pub := testKey("alpha").Public().(ed25519.PublicKey)
	s := FormatPublicKey(pub)
	if !strings.HasPrefix(s, "ed25519:") || len(s) != len("ed25519:")+43 {
		t.Fatalf("FormatPublicKey = %q", s)
	}
	got, err := ParsePublicKey(s)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKey(%q) = %x, %v; want %x", s, got, err, pub)
	}
	body := strings.TrimPrefix(s, "ed25519:")
	for _, bad := range []string{
		"", "ed25519:", body, "ED25519:" + body, "ed448:" + body,
		"ed25519:" + body + "=",      // padded
		"ed25519:" + body[:42],       // 31.x bytes
		"ed25519:" + body + "AA",     // 33 bytes
		"ed25519:" + body[:42] + "+", // standard, not URL, alphabet
		"ed25519:" + body[:42] + "B", // non-canonical trailing bits
		"ed25519: " + body,           // space
	} {
		if k, err := ParsePublicKey(bad); !errors.Is(err, ErrBadPublicKey) {
			t.Errorf("ParsePublicKey(%q) = %x, %v; want ErrBadPublicKey", bad, k, err)
		}
	}
}
