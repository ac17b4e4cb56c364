package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

var signingKeyCases = []testCase{
	{"PutListDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		keys, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys on an empty store", err)
		if len(keys) != 0 {
			t.Fatalf("empty store lists %d signing keys", len(keys))
		}
		newer := store.SigningKey{KID: "kid-b", Created: t0.Add(time.Hour), Sealed: []byte{0, 1, 2, 0xff}}
		older := store.SigningKey{KID: "kid-a", Created: t0, Sealed: bytes.Repeat([]byte{7}, 200)}
		must(t, "PutSigningKey newer", s.PutSigningKey(ctx, newer))
		must(t, "PutSigningKey older", s.PutSigningKey(ctx, older))
		keys, err = s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		if len(keys) != 2 || keys[0].KID != "kid-a" || keys[1].KID != "kid-b" {
			t.Fatalf("ListSigningKeys = %+v, want kid-a then kid-b (oldest first)", keys)
		}
		if !keys[0].Created.Equal(older.Created) || !bytes.Equal(keys[0].Sealed, older.Sealed) || !bytes.Equal(keys[1].Sealed, newer.Sealed) {
			t.Fatalf("ListSigningKeys does not round-trip: got %+v", keys)
		}
		must(t, "DeleteSigningKey", s.DeleteSigningKey(ctx, "kid-a"))
		wantErr(t, "DeleteSigningKey again", s.DeleteSigningKey(ctx, "kid-a"), store.ErrNotFound)
		keys, err = s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys after delete", err)
		if len(keys) != 1 || keys[0].KID != "kid-b" {
			t.Fatalf("after deleting kid-a: %+v, want only kid-b", keys)
		}
	}},
	{"PutRefusesTakenKID", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		first := store.SigningKey{KID: "kid-x", Created: t0, Sealed: []byte("first")}
		must(t, "PutSigningKey", s.PutSigningKey(ctx, first))
		wantErr(t, "PutSigningKey with a taken kid",
			s.PutSigningKey(ctx, store.SigningKey{KID: "kid-x", Created: t0.Add(time.Hour), Sealed: []byte("second")}), store.ErrAlreadyExists)
		keys, err := s.ListSigningKeys(ctx)
		must(t, "ListSigningKeys", err)
		if len(keys) != 1 || string(keys[0].Sealed) != "first" {
			t.Fatalf("a refused put changed the key: %+v", keys)
		}
	}},
}
