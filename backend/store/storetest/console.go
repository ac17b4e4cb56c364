package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

var consoleCases = []testCase{
	{"PutGetReplaceDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := time.Now().Truncate(time.Second)
		cs := store.ConsoleSession{IDHash: "h1", AccountID: "acct-1", Sealed: []byte{0, 1, 0xff}, ExpiresAt: now.Add(time.Hour)}
		_, err := s.GetConsoleSession(ctx, "h1", now)
		wantErr(t, "GetConsoleSession before Put", err, store.ErrNotFound)
		must(t, "PutConsoleSession", s.PutConsoleSession(ctx, cs))
		got, err := s.GetConsoleSession(ctx, "h1", now)
		must(t, "GetConsoleSession", err)
		if got.IDHash != "h1" || got.AccountID != "acct-1" || !bytes.Equal(got.Sealed, cs.Sealed) || !got.ExpiresAt.Equal(cs.ExpiresAt) {
			t.Fatalf("GetConsoleSession = %+v, want %+v", got, cs)
		}
		// Dead at its expiry.
		_, err = s.GetConsoleSession(ctx, "h1", cs.ExpiresAt)
		wantErr(t, "GetConsoleSession at expiry", err, store.ErrNotFound)
		// Replacing extends it and changes the state.
		cs.Sealed, cs.ExpiresAt = []byte("second"), now.Add(2*time.Hour)
		must(t, "PutConsoleSession again", s.PutConsoleSession(ctx, cs))
		got, err = s.GetConsoleSession(ctx, "h1", now.Add(90*time.Minute))
		must(t, "GetConsoleSession after replace", err)
		if string(got.Sealed) != "second" {
			t.Fatalf("replaced session reads %q", got.Sealed)
		}
		// Others are untouched by a delete; deleting twice is fine.
		must(t, "PutConsoleSession other", s.PutConsoleSession(ctx, store.ConsoleSession{IDHash: "h2", ExpiresAt: now.Add(time.Hour)}))
		must(t, "DeleteConsoleSession", s.DeleteConsoleSession(ctx, "h1"))
		must(t, "DeleteConsoleSession again", s.DeleteConsoleSession(ctx, "h1"))
		_, err = s.GetConsoleSession(ctx, "h1", now)
		wantErr(t, "GetConsoleSession after delete", err, store.ErrNotFound)
		if _, err := s.GetConsoleSession(ctx, "h2", now); err != nil {
			t.Fatalf("other session after delete: %v", err)
		}
	}},
}
