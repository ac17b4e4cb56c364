package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// CreatePatient stores a new patient record with Version 1 and indexes it
// under its pharmacy; store.ErrAlreadyExists if the id is taken. The index
// entry is written first (see the package comment).
func (s *Store) CreatePatient(ctx context.Context, p store.Patient) error {
	const opName = "redisstore.CreatePatient"
	p.Version, p.ProfileVersion = 1, 1
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	// The data key before the record (create-if-absent: a retry, or a
	// patient that exists, keeps the key it has).
	dk, err := s.writeKey(ctx, p.ID)
	if err != nil {
		return s.fail(opName, err)
	}
	rec, err := s.sealPatient(dk, p)
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	index := s.k.pharmacyPatients(p.PharmacyID)
	cctx, cancel := s.call(ctx)
	err = s.zadd(cctx, index, p.ID) // idempotent
	cancel()
	if err != nil {
		return s.fail(opName, err)
	}
	err = s.createRecord(ctx, opName, s.k.patient(p.ID), rec, 0)
	if err == nil {
		// The work-list entries after the record (see store.Worklists).
		if err := s.syncWorklist(ctx, p, store.WorklistDates{}, false); err != nil {
			return s.fail(opName, err)
		}
		if err := s.syncNameDOB(ctx, p, store.Patient{}); err != nil {
			return s.fail(opName, err)
		}
	}
	if errors.Is(err, store.ErrAlreadyExists) {
		// Withdraw the index entry unless the existing patient belongs
		// to the same pharmacy (a patient never changes pharmacy).
		existing, gerr := s.GetPatient(ctx, p.ID)
		if gerr == nil && existing.PharmacyID != p.PharmacyID {
			cctx, cancel := s.call(ctx)
			s.rdb.ZRem(cctx, index, p.ID) // best effort: ListPatients filters anyway
			cancel()
		}
	}
	return err
}

// GetPatient returns the patient record or store.ErrNotFound.
func (s *Store) GetPatient(ctx context.Context, id string) (store.Patient, error) {
	p, _, _, err := s.readPatient(ctx, id)
	return p, err
}

// readPatient returns the patient record, its stored header, which is
// what a compare-and-set of the next version must expect (the header's
// format byte is the stored record's, which may be an older format), and
// the patient's data key (nil for a patient created before sealing).
func (s *Store) readPatient(ctx context.Context, id string) (store.Patient, []byte, *seal.DataKey, error) {
	const opName = "redisstore.GetPatient"
	b, wrapped, err := s.getPatient(ctx, id)
	if err != nil {
		return store.Patient{}, nil, nil, s.fail(opName, err)
	}
	dk, err := s.dataKey(id, wrapped)
	if err != nil {
		return store.Patient{}, nil, nil, s.fail(opName, err)
	}
	p, err := s.openPatientCached(id, b, wrapped)
	if err != nil {
		return store.Patient{}, nil, nil, fmt.Errorf("%s: %w", opName, err)
	}
	return p, casHeader(b, versionedHeaderLen), dk, nil
}

// getPatient reads the stored record and the patient's wrapped data
// key in one round trip (MGET: both live in the patient's slot); redis.Nil
// when there is no record.
func (s *Store) getPatient(ctx context.Context, id string) ([]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	vals, err := s.rdb.MGet(cctx, s.k.patient(id), s.k.patientKey(id)).Result()
	if err != nil {
		return nil, nil, err
	}
	return patientReply(vals)
}

// patientReply is the stored record and the patient's wrapped data key
// (nil when there is none) from the reply to MGET record key; redis.Nil
// when there is no record.
func patientReply(vals []any) ([]byte, []byte, error) {
	rec, ok := vals[0].(string)
	if !ok {
		return nil, nil, redis.Nil
	}
	var wrapped []byte
	if w, ok := vals[1].(string); ok {
		wrapped = []byte(w)
	}
	return []byte(rec), wrapped, nil
}

// openPatientCached is openPatient through the cache of decoded records:
// the same stored bytes read again with the same wrapped data key are
// copied, not opened and decoded, and the data key is opened only to
// decode. A record read without the key it was opened with (deleted by a
// patient's erasure, which shreds the key before it deletes the record,
// or replaced) is opened again, and fails as it would uncached.
func (s *Store) openPatientCached(id string, b, wrapped []byte) (store.Patient, error) {
	return s.patients.Patient(id, b, wrapped, s.opener(id, wrapped))
}

// opener opens a record of the patient with their wrapped data key, and
// remembers that key for the audit event the read is about to append
// (wrappedKeys): a patient's first read of the day then costs no GET of
// the key besides.
func (s *Store) opener(id string, wrapped []byte) func([]byte) (store.Patient, error) {
	return func(b []byte) (store.Patient, error) {
		dk, err := s.dataKey(id, wrapped)
		if err != nil {
			return store.Patient{}, err
		}
		if dk != nil {
			s.wrapped.put(id, wrapped)
		}
		return s.openPatient(dk, id, b)
	}
}

// UpdatePatient applies fn to the current record and stores the result
// with Version incremented, by compare-and-set on the version: when another
// writer got in first it re-reads and runs fn again, up to
// Options.MaxUpdateAttempts times, then returns store.ErrConflict. It
// returns the stored record, store.ErrNotFound, or fn's error (nothing
// written). A result that changes ID or PharmacyID is refused.
func (s *Store) UpdatePatient(ctx context.Context, id string, fn func(store.Patient) (store.Patient, error)) (store.Patient, error) {
	const opName = "redisstore.UpdatePatient"
	key := s.k.patient(id)
	for attempt := range s.opts.MaxUpdateAttempts {
		if attempt > 0 {
			if err := s.jitter(ctx, attempt); err != nil {
				return store.Patient{}, s.fail(opName, err)
			}
		}
		b, wrapped, err := s.getPatient(ctx, id)
		if err != nil {
			return store.Patient{}, s.fail(opName, err)
		}
		dk, err := s.dataKey(id, wrapped)
		if err != nil {
			return store.Patient{}, s.fail(opName, err)
		}
		cur, err := s.openPatientCached(id, b, wrapped)
		if err != nil {
			return store.Patient{}, fmt.Errorf("%s: %w", opName, err)
		}
		curHeader := casHeader(b, versionedHeaderLen)
		// fn may change cur's slices in place: the change log compares
		// next with a copy of its own.
		old, err := s.openPatientCached(id, b, wrapped) // a copy, from the cache
		if err != nil {
			return store.Patient{}, fmt.Errorf("%s: %w", opName, err)
		}
		next, err := fn(cur)
		if err != nil {
			return store.Patient{}, err
		}
		if next.ID != cur.ID || next.PharmacyID != cur.PharmacyID {
			return store.Patient{}, fmt.Errorf("%s: the update changes the patient's id or pharmacy", opName)
		}
		next.Version = cur.Version + 1
		store.StampPartVersions(old, &next)
		if dk, err = s.keyForWrite(ctx, id, dk); err != nil {
			return store.Patient{}, s.fail(opName, err)
		}
		rec, err := s.sealPatient(dk, next)
		if err != nil {
			return store.Patient{}, fmt.Errorf("%s: %w", opName, err)
		}
		args := append([]any{curHeader, rec, store.ChangeLogKeep}, changeArgs(store.DiffPatient(old, next, s.opts.Now()))...)
		status, _, err := s.runKeys(ctx, s.scripts.changes.casPatient, []string{key, s.k.patientChanges(id), s.k.patientParts(id)}, args...)
		if err != nil {
			return store.Patient{}, s.fail(opName, err)
		}
		switch status {
		case stOK:
			// The work-list entries after the record (see store.Worklists):
			// a failure here is reported like a lost reply, the write
			// having happened.
			if err := s.syncWorklist(ctx, next, old.Worklist, false); err != nil {
				return store.Patient{}, s.fail(opName, err)
			}
			if err := s.syncNameDOB(ctx, next, old); err != nil {
				return store.Patient{}, s.fail(opName, err)
			}
			return next, nil
		case stNotFound:
			return store.Patient{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
		case stConflict:
			continue
		default:
			return store.Patient{}, fmt.Errorf("%s: unexpected script status %q", opName, status)
		}
	}
	return store.Patient{}, fmt.Errorf("%s: gave up after %d attempts: %w", opName, s.opts.MaxUpdateAttempts, store.ErrConflict)
}

// ListPatients returns up to limit patients of the pharmacy in ID order,
// starting after the ID `after`. Index entries without a matching record
// (a create that stopped half way) are skipped.
func (s *Store) ListPatients(ctx context.Context, pharmacyID, after string, limit int) ([]store.Patient, error) {
	const opName = "redisstore.ListPatients"
	if limit <= 0 {
		return nil, nil
	}
	index := s.k.pharmacyPatients(pharmacyID)
	var out []store.Patient
	for len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, s.fail(opName, err)
		}
		lo := "-"
		if after != "" {
			lo = "(" + after
		}
		want := limit - len(out)
		cctx, cancel := s.call(ctx)
		ids, err := s.rdb.ZRangeByLex(cctx, index, &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(want)}).Result()
		cancel()
		if err != nil {
			return nil, s.fail(opName, err)
		}
		if len(ids) == 0 {
			break
		}
		cctx, cancel = s.call(ctx)
		ps, err := s.getPatients(cctx, ids, false)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		for _, p := range ps {
			if p.ID != "" && p.PharmacyID == pharmacyID {
				out = append(out, p)
			}
		}
		after = ids[len(ids)-1]
		if len(ids) < want {
			break
		}
	}
	return out, nil
}

// getPatients reads the records of ids and their data keys in one
// pipeline; a missing record comes back as the zero Patient. With shared,
// the records are the record cache's own, for a caller that only reads
// them (see recordcache.Cache.Shared).
func (s *Store) getPatients(ctx context.Context, ids []string, shared bool) ([]store.Patient, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.MGet(ctx, s.k.patient(id), s.k.patientKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("read patients", err)
	}
	out := make([]store.Patient, len(ids))
	for i, c := range cmds {
		rec, wrapped, err := patientReply(c.Val())
		if errors.Is(err, redis.Nil) {
			continue
		}
		var p store.Patient
		if shared {
			p, err = s.patients.Shared(ids[i], rec, wrapped, s.opener(ids[i], wrapped))
		} else {
			p, err = s.openPatientCached(ids[i], rec, wrapped)
		}
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}
