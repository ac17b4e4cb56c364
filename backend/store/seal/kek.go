package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// LocalKEKPath is the default local key-encryption key file in dataDir,
// next to the signing keys.
func LocalKEKPath(dataDir string) string { return filepath.Join(dataDir, "phi-kek.json") }

// LoadOrCreateLocalKEK returns the key-encryption key kept in the Tink
// keyset file at path, creating the file (0600, AES-256-GCM) when there is
// none; created says whether it did. Two processes starting at once end up
// with the same key: the file appears whole or not at all. A file that
// others may read (group or world bits set) is refused, as is one that
// does not hold a Tink AEAD keyset.
func LoadOrCreateLocalKEK(path string) (kek tink.AEAD, created bool, err error) {
	kek, err = loadLocalKEK(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return kek, false, err
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, false, fmt.Errorf("seal: new key-encryption key: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, false, fmt.Errorf("seal: encode key-encryption key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("seal: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".phi-kek-*")
	if err != nil {
		return nil, false, fmt.Errorf("seal: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("seal: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("seal: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("seal: %w", err)
	}
	// Link fails when path exists: whoever links first wins, and the
	// loser reads the winner's key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			kek, err := loadLocalKEK(path)
			return kek, false, err
		}
		return nil, false, fmt.Errorf("seal: create %s: %w", path, err)
	}
	kek, err = aead.New(h)
	if err != nil {
		return nil, false, fmt.Errorf("seal: key-encryption key: %w", err)
	}
	return kek, true, nil
}

func loadLocalKEK(path string) (tink.AEAD, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key-encryption key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: key-encryption key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("seal: key-encryption key %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(f))
	if err != nil {
		return nil, fmt.Errorf("seal: key-encryption key %s is not a Tink keyset: %w", path, err)
	}
	kek, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("seal: key-encryption key %s is not an AEAD keyset: %w", path, err)
	}
	return kek, nil
}

// RegisterKMS makes a cloud KMS usable as the key-encryption key: client
// is a Tink KMS client (for example gcpkms.NewClientWithOptions or
// awskms.NewClientWithOptions from tink-go-gcpkms / tink-go-awskms), and
// [KMSKEK] then accepts the URIs it supports
// ("gcp-kms://projects/…/cryptoKeys/…", "aws-kms://arn:aws:kms:…").
func RegisterKMS(client registry.KMSClient) { registry.RegisterKMSClient(client) }

// KMSKEK returns the key-encryption key at uri in a KMS whose client was
// registered with [RegisterKMS]. Every wrap and unwrap is a call to the
// KMS, which is why data keys are cached once opened.
func KMSKEK(uri string) (tink.AEAD, error) {
	c, err := registry.GetKMSClient(uri)
	if err != nil {
		return nil, fmt.Errorf("seal: no KMS client for %q (register one with seal.RegisterKMS): %w", uri, err)
	}
	kek, err := c.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("seal: KMS key %q: %w", uri, err)
	}
	return kek, nil
}
