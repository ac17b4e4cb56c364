package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key management errors.
var (
	// ErrUnknownKey means no key with the given kid is in the key set.
	ErrUnknownKey = errors.New("auth: unknown key id")
	// ErrLastKey means the operation would leave the key set without a
	// signing key; nothing was changed.
	ErrLastKey = errors.New("auth: refusing to remove the last key")
)

const (
	keyFileSuffix  = ".pem"
	keyFileTime    = "20060102T150405.000000000Z"
	keyFileMaxSize = 16 << 10
	pemTypePKCS8   = "PRIVATE KEY"
)

// KeySet holds the ES256 signing keys of the access tokens: the newest key
// signs, every listed key verifies. The keys live in one directory, one
// PKCS#8 PEM file per key with mode 0600, named
// "<creation time>_<kid>.pem"; the kid is the key's RFC 7638 thumbprint
// (SHA-256, base64url). A KeySet is safe for concurrent use.
//
// Several processes may share the directory (a mounted volume): each one
// sees another's Rotate or Retire after its own Reload.
type KeySet struct {
	dir  string
	now  func() time.Time
	mu   sync.Mutex // serialises changes to dir and ring
	ring atomic.Pointer[keyRing]
}

// keyRing is an immutable snapshot of the keys.
type keyRing struct {
	keys   []ringKey // oldest first; the last one signs
	public map[string]*ecdsa.PublicKey
	jwks   []byte // the JSON Web Key Set document of the public keys
}

type ringKey struct {
	kid     string
	created time.Time
	file    string
	private *ecdsa.PrivateKey
}

func (r *keyRing) signing() ringKey { return r.keys[len(r.keys)-1] }

// LoadOrCreateKeySet loads the keys in dir, creating dir (0700) and a first
// key when there is none, so that the returned set always has at least one
// key. It fails when a key file is unreadable, is not a P-256 PKCS#8 key,
// does not match the kid in its name, or is readable by group or others.
// now stamps the creation time of new keys.
func LoadOrCreateKeySet(dir string, now func() time.Time) (*KeySet, error) {
	if dir == "" {
		return nil, errors.New("auth.LoadOrCreateKeySet: empty key directory")
	}
	if now == nil {
		return nil, errors.New("auth.LoadOrCreateKeySet: nil clock")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
	}
	k := &KeySet{dir: dir, now: now}
	k.mu.Lock()
	defer k.mu.Unlock()
	ring, err := loadRing(dir)
	if err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
	}
	if ring == nil {
		if err := createKey(dir, now().UTC()); err != nil {
			return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
		}
		if ring, err = loadRing(dir); err != nil {
			return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
		}
	}
	k.ring.Store(ring)
	return k, nil
}

// Rotate generates a new key in the directory; it signs every token issued
// from now on, and the older keys keep verifying until retired.
func (k *KeySet) Rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	created := k.now().UTC()
	// Keep creation times strictly increasing so that the newest key is
	// unambiguous even under a coarse or frozen clock.
	if newest := k.ring.Load().signing().created; !created.After(newest) {
		created = newest.Add(time.Nanosecond)
	}
	if err := createKey(k.dir, created); err != nil {
		return fmt.Errorf("auth.Rotate: %w", err)
	}
	if err := k.reloadLocked(); err != nil {
		return fmt.Errorf("auth.Rotate: %w", err)
	}
	return nil
}

// Retire removes the key kid from the directory and the set: tokens it
// signed stop verifying at once. It returns ErrUnknownKey when there is no
// such key and ErrLastKey when kid is the only key.
func (k *KeySet) Retire(kid string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ring := k.ring.Load()
	idx := -1
	for i, key := range ring.keys {
		if key.kid == kid {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("auth.Retire: %w", ErrUnknownKey)
	}
	if len(ring.keys) == 1 {
		return fmt.Errorf("auth.Retire: %w", ErrLastKey)
	}
	if err := os.Remove(ring.keys[idx].file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("auth.Retire: %w", err)
	}
	if err := syncDir(k.dir); err != nil {
		return fmt.Errorf("auth.Retire: %w", err)
	}
	if err := k.reloadLocked(); err != nil {
		return fmt.Errorf("auth.Retire: %w", err)
	}
	return nil
}

// Reload re-reads the directory, picking up keys another process rotated
// in or retired. On error, or when the directory holds no key, the set is
// left as it was.
func (k *KeySet) Reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return fmt.Errorf("auth.Reload: %w", err)
	}
	return nil
}

func (k *KeySet) reloadLocked() error {
	ring, err := loadRing(k.dir)
	if err != nil {
		return err
	}
	if ring == nil {
		return fmt.Errorf("no key in %s", k.dir)
	}
	k.ring.Store(ring)
	return nil
}

// KeyIDs returns the kids of the live keys, newest (the signing key) first.
func (k *KeySet) KeyIDs() []string {
	ring := k.ring.Load()
	ids := make([]string, 0, len(ring.keys))
	for i := len(ring.keys) - 1; i >= 0; i-- {
		ids = append(ids, ring.keys[i].kid)
	}
	return ids
}

// loadRing reads every key file of dir. It returns nil, nil when there is
// none.
func loadRing(dir string) (*keyRing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var keys []ringKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keyFileSuffix) {
			continue
		}
		key, err := loadKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", name, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].created.Equal(keys[j].created) {
			return keys[i].created.Before(keys[j].created)
		}
		return keys[i].kid < keys[j].kid
	})
	ring := &keyRing{keys: keys, public: make(map[string]*ecdsa.PublicKey, len(keys))}
	set := jose.JSONWebKeySet{}
	for i := len(keys) - 1; i >= 0; i-- {
		pub := &keys[i].private.PublicKey
		ring.public[keys[i].kid] = pub
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: pub, KeyID: keys[i].kid, Algorithm: string(jose.ES256), Use: "sig",
		})
	}
	if ring.jwks, err = json.Marshal(set); err != nil {
		return nil, err
	}
	return ring, nil
}

func loadKeyFile(path string) (ringKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return ringKey{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ringKey{}, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return ringKey{}, fmt.Errorf("permissions %o are too open (want 0600)", perm)
	}
	raw, err := io.ReadAll(io.LimitReader(f, keyFileMaxSize+1))
	if err != nil {
		return ringKey{}, err
	}
	if len(raw) > keyFileMaxSize {
		return ringKey{}, errors.New("file too large for a key")
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != pemTypePKCS8 {
		return ringKey{}, errors.New("no PKCS#8 PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return ringKey{}, err
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return ringKey{}, errors.New("not a P-256 ECDSA key")
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return ringKey{}, err
	}
	stamp, nameKID, ok := strings.Cut(strings.TrimSuffix(filepath.Base(path), keyFileSuffix), "_")
	if !ok || nameKID != kid {
		return ringKey{}, errors.New("file name does not carry the key's kid")
	}
	created, err := time.Parse(keyFileTime, stamp)
	if err != nil {
		return ringKey{}, fmt.Errorf("file name does not start with a creation time: %w", err)
	}
	return ringKey{kid: kid, created: created, file: path, private: priv}, nil
}

// createKey generates a P-256 key and writes it to dir atomically (a
// temporary file renamed into place), 0600.
func createKey(dir string, created time.Time) (err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".key-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = pem.Encode(f, &pem.Block{Type: pemTypePKCS8, Bytes: der}); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	name := created.UTC().Format(keyFileTime) + "_" + kid + keyFileSuffix
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
