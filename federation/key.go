package federation

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeyFile is the name of the server's private key in its data directory: the raw 32-byte Ed25519 seed
// (RFC 8032), readable by the owner only.
const KeyFile = "federation.key"

// PublicKeyPrefix starts the text form of a public key: "ed25519:" followed by the 32 key bytes in unpadded
// base64url (43 characters).
const PublicKeyPrefix = "ed25519:"

// LoadOrCreateKey returns the server's private key from dir/KeyFile, creating the directory and the key on
// first start. It refuses a key file of the wrong size, one that is not a regular file, and (outside Windows)
// one that group or others may read or write, rather than using a key that may be corrupt or leaked.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("federation: key directory: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("federation: new key: %w", err)
	}
	// Write a temporary file and link it into place: the key file appears whole or not at all, and if two
	// processes start at once, one key wins and both use it.
	tmp, err := os.CreateTemp(dir, KeyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("federation: new key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(seed)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("federation: new key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("federation: new key %s: %w", path, err)
	}
	return readKey(path)
}

// readKey reads and checks a key file; a missing file is reported as fs.ErrNotExist.
func readKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("federation: key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("federation: key %s: not a regular file: %w", path, ErrKeyFile)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("federation: key %s: mode %04o, want 0600 (chmod 600 %s): %w",
			path, perm, path, ErrKeyPermissions)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("federation: key %s: %w", path, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("federation: key %s: %d bytes, want a %d-byte Ed25519 seed: %w",
			path, len(seed), ed25519.SeedSize, ErrKeyFile)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// FormatPublicKey renders a public key as text: PublicKeyPrefix and unpadded base64url.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form made by FormatPublicKey.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("federation: public key %q: want prefix %q: %w", s, PublicKeyPrefix, ErrBadPublicKey)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("federation: public key %q: want %d bytes in unpadded base64url: %w",
			s, ed25519.PublicKeySize, ErrBadPublicKey)
	}
	return ed25519.PublicKey(b), nil
}

// publicKey returns the public half of a private key, checking its size (ed25519.Sign panics on a wrong one).
func publicKey(key ed25519.PrivateKey) (ed25519.PublicKey, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("federation: private key of %d bytes, want %d: %w",
			len(key), ed25519.PrivateKeySize, ErrKeyFile)
	}
	return key.Public().(ed25519.PublicKey), nil
}
