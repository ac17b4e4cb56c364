package auth

import (
	"context"
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
	"log/slog"
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
// signs, every listed key verifies. The kid of a key is its RFC 7638
// thumbprint (SHA-256, base64url). A KeySet is safe for concurrent use.
//
// The keys live in one of two places, shared by every instance that
// verifies the others' tokens:
//
//   - a directory (LoadOrCreateKeySet), one PKCS#8 PEM file per key with
//     mode 0600, named "<creation time>_<kid>.pem", on a volume the
//     instances share;
//   - the store (LoadOrCreateStoreKeySet), each private key sealed with
//     AES-256-GCM under a wrapping key that every instance is given (see
//     LoadOrCreateWrapKey), so that whoever can read the store (anyone
//     with redis-cli) does not get the keys.
//
// Each instance sees another's Rotate or Retire after its own Reload, and
// at once when it meets a token signed by a key it does not know yet (see
// Tokens.Verify).
type KeySet struct {
	src  keySource
	now  func() time.Time
	mu   sync.Mutex // serialises changes to the source and ring
	ring atomic.Pointer[keyRing]

	hints      atomic.Pointer[slog.Logger]
	lastMiss   atomic.Int64 // unix nanos of the last reload on an unknown kid
	lastHintAt atomic.Int64 // unix nanos of the last unknown-kid hint logged
}

// keySource is where a KeySet's keys are kept.
type keySource interface {
	// load returns every key, in any order; none is not an error.
	load(ctx context.Context) ([]ringKey, error)
	// add stores a new key.
	add(ctx context.Context, priv *ecdsa.PrivateKey, kid string, created time.Time) error
	// remove deletes a key; a key already gone is not an error.
	remove(ctx context.Context, k ringKey) error
	// String names the source in errors.
	String() string
}

// keyRing is an immutable snapshot of the keys.
type keyRing struct {
	keys   []ringKey // oldest first; the last one signs
	public map[string]*ecdsa.PublicKey
	jwks   []byte // the JSON Web Key Set document of the public keys
	// signer signs access tokens with the newest key. Built once per
	// ring (a go-jose Signer is safe for concurrent use), not per token.
	signer jose.Signer
}

type ringKey struct {
	kid     string
	created time.Time
	file    string // directory source only
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
	}
	k, err := loadOrCreate(context.Background(), dirSource(dir), now)
	if err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateKeySet: %w", err)
	}
	return k, nil
}

func loadOrCreate(ctx context.Context, src keySource, now func() time.Time) (*KeySet, error) {
	if now == nil {
		return nil, errors.New("nil clock")
	}
	k := &KeySet{src: src, now: now}
	k.mu.Lock()
	defer k.mu.Unlock()
	ring, err := loadRing(ctx, src)
	if err != nil {
		return nil, err
	}
	if ring == nil {
		if err := addKey(ctx, src, now().UTC()); err != nil {
			return nil, err
		}
		if ring, err = loadRing(ctx, src); err != nil {
			return nil, err
		}
		if ring == nil {
			return nil, fmt.Errorf("no key in %s after creating one", src)
		}
	}
	k.ring.Store(ring)
	return k, nil
}

// LogUnknownKeys makes the set log, at most once a minute, a hint when a
// token names a kid it does not have (usually: instances that do not share
// their keys). Call it before the set is used.
func (k *KeySet) LogUnknownKeys(logger *slog.Logger) { k.hints.Store(logger) }

// Rotate generates a new key in the source; it signs every token issued
// from now on, and the older keys keep verifying until retired.
func (k *KeySet) Rotate(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	created := k.now().UTC()
	// Keep creation times strictly increasing so that the newest key is
	// unambiguous even under a coarse or frozen clock.
	if newest := k.ring.Load().signing().created; !created.After(newest) {
		created = newest.Add(time.Nanosecond)
	}
	if err := addKey(ctx, k.src, created); err != nil {
		return fmt.Errorf("auth.Rotate: %w", err)
	}
	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("auth.Rotate: %w", err)
	}
	return nil
}

// Retire removes the key kid from the source and the set: tokens it
// signed stop verifying at once. It returns ErrUnknownKey when there is no
// such key and ErrLastKey when kid is the only key.
func (k *KeySet) Retire(ctx context.Context, kid string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("auth.Retire: %w", err)
	}
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
	if err := k.src.remove(ctx, ring.keys[idx]); err != nil {
		return fmt.Errorf("auth.Retire: %w", err)
	}
	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("auth.Retire: %w", err)
	}
	return nil
}

// Reload re-reads the source, picking up keys another process rotated
// in or retired. On error, or when the source holds no key, the set is
// left as it was.
func (k *KeySet) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("auth.Reload: %w", err)
	}
	return nil
}

func (k *KeySet) reloadLocked(ctx context.Context) error {
	ring, err := loadRing(ctx, k.src)
	if err != nil {
		return err
	}
	if ring == nil {
		return fmt.Errorf("no key in %s", k.src)
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

// live reports whether kid is in the current key set (no reload): a key
// retired here or by another instance (seen after Reload) is not.
func (k *KeySet) live(kid string) bool {
	_, ok := k.ring.Load().public[kid]
	return ok
}

// missReload and missHint bound what a token with an unknown kid costs:
// at most one reload of the source every missReload, at most one log line
// every missHint.
const (
	missReload = 5 * time.Second
	missHint   = time.Minute
)

// verifier returns the public key of kid. When the set does not have it,
// it re-reads the source (at most once every missReload: another instance
// may just have rotated a key in) and, if the key is still unknown, logs a
// hint (at most once a minute) that the instances do not share their keys.
func (k *KeySet) verifier(kid string) (*ecdsa.PublicKey, bool) {
	if pub, ok := k.ring.Load().public[kid]; ok {
		return pub, true
	}
	now := time.Now()
	if last := k.lastMiss.Load(); now.UnixNano()-last >= int64(missReload) && k.lastMiss.CompareAndSwap(last, now.UnixNano()) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := k.Reload(ctx)
		cancel()
		if pub, ok := k.ring.Load().public[kid]; ok {
			return pub, true
		}
		if err != nil {
			if l := k.hints.Load(); l != nil {
				l.Warn("reloading signing keys for an unknown kid", "error", err.Error())
			}
		}
	}
	if l := k.hints.Load(); l != nil {
		if last := k.lastHintAt.Load(); now.UnixNano()-last >= int64(missHint) && k.lastHintAt.CompareAndSwap(last, now.UnixNano()) {
			l.Warn("access token signed by a key this instance does not have (kid unknown): "+
				"instances that verify each other's tokens must share their signing keys "+
				"(--signing-keys store with the same --signing-key-wrap-file, or one shared --signing-key-dir); "+
				"a retired key also stops verifying",
				"kid", kid, "signing_keys", k.KeyIDs(), "source", k.src.String())
		}
	}
	return nil, false
}

// addKey generates a P-256 key and stores it in src.
func addKey(ctx context.Context, src keySource, created time.Time) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return err
	}
	return src.add(ctx, priv, kid, created)
}

// loadRing builds the ring of the keys in src. It returns nil, nil when
// there is none.
func loadRing(ctx context.Context, src keySource) (*keyRing, error) {
	keys, err := src.load(ctx)
	if err != nil {
		return nil, err
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
	newest := ring.signing()
	if ring.signer, err = jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: newest.private, KeyID: newest.kid}},
		(&jose.SignerOptions{}).WithType(accessTokenType),
	); err != nil {
		return nil, err
	}
	return ring, nil
}

// dirSource keeps the keys as files in a directory.
type dirSource string

func (d dirSource) String() string { return "directory " + string(d) }

func (d dirSource) remove(_ context.Context, k ringKey) error {
	if err := os.Remove(k.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(string(d))
}

func (d dirSource) add(_ context.Context, priv *ecdsa.PrivateKey, kid string, created time.Time) error {
	return createKey(string(d), priv, kid, created)
}

// load reads every key file of the directory.
func (d dirSource) load(context.Context) ([]ringKey, error) {
	dir := string(d)
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
	return keys, nil
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

// createKey writes priv to dir atomically (a temporary file renamed into
// place), 0600.
func createKey(dir string, priv *ecdsa.PrivateKey, kid string, created time.Time) (err error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
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
