package redisstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// The name and birth-date index (store.AtRest.FindPatients): one set of
// patient ids per blind index of pharmacy, family name and birth date,
//
//	mtm:{nd:<blind>}   set of patient ids
//
// written after the record (SADD is idempotent) and, like the work lists,
// checked on read against the decrypted record: an entry the record does
// not back (a rename, a write that stopped half way) is skipped and
// removed.

// maxFound is how many patients FindPatients returns at most.
const maxFound = 100

// nameDOBKey is the index key of a pharmacy's family name and birth date.
func (s *Store) nameDOBKey(pharmacyID, familyName string, dob store.Date) string {
	return s.k.nameDOB(s.blind(blindNameDOB, pharmacyID+"\x00"+store.FoldName(familyName)+"\x00"+dob.String()))
}

// syncNameDOB indexes p under its name and birth date after its record
// was written, and drops the entry of old (the record before; zero for a
// new patient) when that differs. The removal is best effort: readers
// skip what the record does not back.
func (s *Store) syncNameDOB(ctx context.Context, p, old store.Patient) error {
	key := s.nameDOBKey(p.PharmacyID, p.FamilyName, p.DateOfBirth)
	if old.ID != "" {
		if was := s.nameDOBKey(old.PharmacyID, old.FamilyName, old.DateOfBirth); was != key {
			cctx, cancel := s.call(ctx)
			s.rdb.SRem(cctx, was, p.ID)
			cancel()
		} else {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.apply(cctx, key, func(pp redis.Pipeliner) redis.Cmder { return pp.SAdd(cctx, key, p.ID) })
}

// FindPatients implements store.AtRest.
func (s *Store) FindPatients(ctx context.Context, pharmacyID, familyName string, birthDate store.Date) ([]store.Patient, error) {
	const opName = "redisstore.FindPatients"
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	key := s.nameDOBKey(pharmacyID, familyName, birthDate)
	want := store.FoldName(familyName)
	cctx, cancel := s.call(ctx)
	ids, err := s.rdb.SMembers(cctx, key).Result()
	cancel()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	slices.Sort(ids)
	var out []store.Patient
	for len(ids) > 0 && len(out) < maxFound {
		batch := ids[:min(len(ids), maxFound)]
		ids = ids[len(batch):]
		cctx, cancel := s.call(ctx)
		ps, err := s.getPatients(cctx, batch, false)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		for i, p := range ps {
			if p.ID == "" || p.PharmacyID != pharmacyID || store.FoldName(p.FamilyName) != want || p.DateOfBirth != birthDate {
				cctx, cancel := s.call(ctx)
				s.rdb.SRem(cctx, key, batch[i]) // stale: best effort
				cancel()
				continue
			}
			if len(out) < maxFound {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
