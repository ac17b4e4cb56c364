package redisstore

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestHalfWrittenStepsStayInvisible leaves behind what a process that died
// between the two steps of a cross-slot operation leaves, and checks that
// users see nothing half-done and are not blocked by it.
func TestHalfWrittenStepsStayInvisible(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	now := time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := New(t.Context(), client, Options{KEK: redistest.KEK(), Now: clock, ClaimGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	t.Run("PatientIndexedButNotCreated", func(t *testing.T) {
		client.ZAdd(ctx, s.k.pharmacyPatients("ph-1"), redis.Z{Member: "pat-ghost"})
		if err := s.CreatePatient(ctx, store.Patient{ID: "pat-real", PharmacyID: "ph-1"}); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListPatients(ctx, "ph-1", "", 10)
		if err != nil || len(list) != 1 || list[0].ID != "pat-real" {
			t.Fatalf("ListPatients = %v, %v; want only pat-real", list, err)
		}
		// The same id can still be created later.
		if err := s.CreatePatient(ctx, store.Patient{ID: "pat-ghost", PharmacyID: "ph-1"}); err != nil {
			t.Fatalf("creating the half-created patient again: %v", err)
		}
	})

	t.Run("EmailClaimedButAccountNeverCreated", func(t *testing.T) {
		claim := strconv.FormatInt(now.UnixMilli(), 10) + "\nacct-dead"
		client.Set(ctx, s.emailKey("ana@example.org"), claim, 0)
		if _, err := s.GetAccountByEmail(ctx, "ana@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetAccountByEmail of an orphan claim: %v, want ErrNotFound", err)
		}
		acct := store.Account{ID: "acct-2", Email: "ana@example.org", Role: store.RolePharmacist}
		if err := s.CreateAccount(ctx, acct); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("CreateAccount within the claim's grace: %v, want ErrAlreadyExists", err)
		}
		now = now.Add(2 * time.Minute)
		if err := s.CreateAccount(ctx, acct); err != nil {
			t.Fatalf("CreateAccount after the orphan claim's grace: %v", err)
		}
		got, err := s.GetAccountByEmail(ctx, "ana@example.org")
		if err != nil || got.ID != "acct-2" {
			t.Fatalf("GetAccountByEmail = %+v, %v; want acct-2", got, err)
		}
	})

	t.Run("TokenIndexedButNeverInFamily", func(t *testing.T) {
		tok := store.RefreshToken{Hash: "rt-1", FamilyID: "fam-1", Subject: "acct-1", Role: store.RoleCaregiver, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateRefreshToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// A successor whose rotation never ran.
		client.Set(ctx, s.k.token("rt-ghost"), tokenIndex(store.RefreshToken{FamilyID: "fam-1", ExpiresAt: now.Add(time.Hour)}), 0)
		got, err := s.RotateRefreshToken(ctx, "rt-1", store.Rotation{Next: store.RefreshToken{Hash: "rt-2", ExpiresAt: now.Add(2 * time.Hour)}}, now)
		if err != nil {
			t.Fatalf("rotating the live token next to a ghost successor: %v", err)
		}
		if got.Repeat || got.Spent.Hash != "rt-1" || got.Next.Hash != "rt-2" || got.Next.FamilyID != "fam-1" || got.Next.Subject != "acct-1" || got.Next.Role != store.RoleCaregiver {
			t.Fatalf("rotation = %+v; want rt-1 spent for rt-2, same family, subject and role", got)
		}
		// The session goes on from rt-2; the ghost never becomes a token.
		next, err := s.RotateRefreshToken(ctx, "rt-2", store.Rotation{Next: store.RefreshToken{Hash: "rt-3", ExpiresAt: now.Add(3 * time.Hour)}}, now)
		if err != nil || next.Next.Hash != "rt-3" || next.Next.Subject != "acct-1" {
			t.Fatalf("rotating rt-2 after the ghost: %+v, %v; want rt-3 for acct-1", next, err)
		}
		if _, err := s.RotateRefreshToken(ctx, "rt-ghost", store.Rotation{Next: store.RefreshToken{Hash: "rt-4", ExpiresAt: now.Add(3 * time.Hour)}}, now); err == nil {
			t.Fatal("the ghost successor was accepted as a refresh token")
		}
	})
}
