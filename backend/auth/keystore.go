package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// WrapKeySize is the size of the key that seals signing keys in the store
// (AES-256).
const WrapKeySize = 32

// sealedFormat is the first byte of a sealed key: AES-256-GCM, a 12-byte
// nonce, then the ciphertext of the PKCS#8 DER private key, with the kid as
// associated data so that a sealed key cannot be passed off under another
// kid.
const sealedFormat byte = 1

// LoadOrCreateStoreKeySet loads the signing keys kept in the store,
// creating a first key when there is none. wrapKey (WrapKeySize bytes, see
// LoadOrCreateWrapKey) seals each private key before it reaches the store
// and opens it after; every instance sharing the store needs the same
// wrapKey. It fails when a stored key cannot be opened with wrapKey (an
// instance given a different wrapping key), is not a P-256 key or does not
// match its kid. now stamps the creation time of new keys.
func LoadOrCreateStoreKeySet(ctx context.Context, keys store.SigningKeys, wrapKey []byte, now func() time.Time) (*KeySet, error) {
	if keys == nil {
		return nil, errors.New("auth.LoadOrCreateStoreKeySet: missing store")
	}
	aead, err := newWrapAEAD(wrapKey)
	if err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateStoreKeySet: %w", err)
	}
	k, err := loadOrCreate(ctx, storeSource{keys: keys, aead: aead}, now)
	if err != nil {
		return nil, fmt.Errorf("auth.LoadOrCreateStoreKeySet: %w", err)
	}
	return k, nil
}

func newWrapAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != WrapKeySize {
		return nil, fmt.Errorf("wrapping key has %d bytes, want %d", len(key), WrapKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// storeSource keeps the keys, sealed, in the store.
type storeSource struct {
	keys store.SigningKeys
	aead cipher.AEAD
}

func (s storeSource) String() string { return "the store" }

func (s storeSource) add(ctx context.Context, priv *ecdsa.PrivateKey, kid string, created time.Time) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return err
	}
	sealed := append([]byte{sealedFormat}, nonce...)
	sealed = s.aead.Seal(sealed, nonce, der, sealedAD(kid))
	return s.keys.PutSigningKey(ctx, store.SigningKey{KID: kid, Created: created, Sealed: sealed})
}

func (s storeSource) load(ctx context.Context) ([]ringKey, error) {
	stored, err := s.keys.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ringKey, 0, len(stored))
	for _, k := range stored {
		priv, err := s.open(k)
		if err != nil {
			return nil, fmt.Errorf("signing key %s in the store: %w", k.KID, err)
		}
		out = append(out, ringKey{kid: k.KID, created: k.Created, private: priv})
	}
	return out, nil
}

func (s storeSource) open(k store.SigningKey) (*ecdsa.PrivateKey, error) {
	n := s.aead.NonceSize()
	if len(k.Sealed) < 1+n || k.Sealed[0] != sealedFormat {
		return nil, errors.New("not a sealed key of a known format")
	}
	der, err := s.aead.Open(nil, k.Sealed[1:1+n], k.Sealed[1+n:], sealedAD(k.KID))
	if err != nil {
		return nil, errors.New("cannot be opened with this instance's wrapping key: every instance needs the same --signing-key-wrap-file")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 ECDSA key")
	}
	if kid, err := thumbprint(&priv.PublicKey); err != nil || kid != k.KID {
		return nil, errors.New("key does not match its kid")
	}
	return priv, nil
}

func (s storeSource) remove(ctx context.Context, k ringKey) error {
	if err := s.keys.DeleteSigningKey(ctx, k.kid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

func sealedAD(kid string) []byte { return []byte("mtm signing key\x00" + kid) }

// LoadOrCreateWrapKey reads the wrapping key of the signing keys from path:
// WrapKeySize random bytes, base64 (standard or URL alphabet, padded or
// not) on one line. The file must not be readable by group or others.
// When the file does not exist and create is true, it writes a fresh key
// there (0600) and reports created; every other instance of the deployment
// must then be given a copy.
func LoadOrCreateWrapKey(path string, create bool) (key []byte, created bool, err error) {
	raw, err := readWrapKeyFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key = make([]byte, WrapKeySize)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, false, fmt.Errorf("auth.LoadOrCreateWrapKey: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("auth.LoadOrCreateWrapKey: %w", err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, false, fmt.Errorf("auth.LoadOrCreateWrapKey: %w", werr)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth.LoadOrCreateWrapKey: %w", err)
	}
	text := strings.TrimRight(strings.TrimSpace(string(raw)), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil || len(key) != WrapKeySize {
		return nil, false, fmt.Errorf("auth.LoadOrCreateWrapKey: %s does not hold %d base64-encoded bytes", path, WrapKeySize)
	}
	return key, false, nil
}

func readWrapKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %o are too open (want 0600)", path, perm)
	}
	return io.ReadAll(io.LimitReader(f, 1024))
}
