// Package seal encrypts what the store keeps about patients (envelope
// encryption with Google's Tink).
//
// The layers:
//
//   - The key-encryption key (KEK) is a Tink AEAD: a local keyset file
//     created on first start (0600, [LoadOrCreateLocalKEK]) or a key in a
//     cloud KMS reached through a Tink KMS client registered under its URI
//     scheme ([KMSKEK]). The KEK never encrypts records; it wraps the keys
//     that do.
//   - A data-encryption key (DEK) is a Tink AES-256-GCM keyset per scope
//     (a patient, so that deleting the patient's wrapped DEK makes every
//     copy of their ciphertext unreadable: crypto-shredding). The store
//     keeps it wrapped, bound to its scope: a wrapped DEK copied to another
//     scope does not open ([NewDataKey], [OpenDataKey]).
//   - A record is sealed under its scope's DEK with associated data naming
//     the scope, the record's kind and id and the format version
//     ([DataKey.Seal]): a ciphertext moved to another record, kind or
//     patient fails to open with [ErrTampered].
//   - Lookups that need a clear value (an e-mail, a name and date of birth,
//     an activation code) use blind indexes: HMAC-SHA256 under a key of
//     their own, one purpose per index ([IndexKey]).
//
// Rotation: [RotateDataKey] adds a new primary key to a DEK keyset; new
// seals use it at once, old ciphertexts still open, [DataKey.Current]
// tells a re-encryption pass which ones to rewrite, and [RetireKeys]
// drops key versions nothing uses any more.
package seal
