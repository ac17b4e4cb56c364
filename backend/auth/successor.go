package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// successorKey derives the key that seals a refresh token's successor from
// the spent token's clear value. The store keeps only hashes of tokens
// (HashSecret, a different derivation), so only a holder of the spent
// token can open what is sealed under it.
func successorKey(spent string) []byte {
	k := sha256.Sum256([]byte("mtm refresh successor v1\x00" + spent))
	return k[:]
}

// SealSuccessor seals next, the refresh token that replaces spent, so that
// a repeat of spent within the grace can be handed next again.
func SealSuccessor(spent, next string) ([]byte, error) {
	aead, err := successorAEAD(spent)
	if err != nil {
		return nil, fmt.Errorf("auth.SealSuccessor: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(next)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("auth.SealSuccessor: %w", err)
	}
	return aead.Seal(nonce, nonce, []byte(next), nil), nil
}

// OpenSuccessor opens what SealSuccessor sealed under spent; an error when
// spent is not the token it was sealed under or sealed was altered.
func OpenSuccessor(spent string, sealed []byte) (string, error) {
	aead, err := successorAEAD(spent)
	if err != nil {
		return "", fmt.Errorf("auth.OpenSuccessor: %w", err)
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("auth.OpenSuccessor: sealed value too short")
	}
	next, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("auth.OpenSuccessor: %w", err)
	}
	return string(next), nil
}

func successorAEAD(spent string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(successorKey(spent))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
