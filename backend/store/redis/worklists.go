package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// Work lists (store.Worklists): one sorted set per pharmacy and list,
// mtm:{ph:<id>}:wl:<list>, all members at score 0 so that they sort by
// member: "YYYYMMDD|<patient id>". A list is a ZRANGEBYLEX up to the day
// after the last one asked for. The sets live in the pharmacy's slot, the
// records in each patient's: a write stores the record first and the
// entries after (ZADD is idempotent); a reader re-checks every entry
// against the record's Worklist dates and deletes one the record does not
// back.

func (k keys) worklist(pharmacyID string, l store.Worklist) string {
	return k.tag("ph", pharmacyID) + ":wl:" + string(l)
}

func worklistMember(due store.Date, patientID string) string {
	return strconv.FormatInt(dEnc(due), 10) + "|" + patientID
}

// syncWorklist makes the index entries of p agree with its dates, given
// the dates it was indexed under before (old); with force it writes the
// entries even where the dates did not change. The record is already
// written: an error here leaves an entry missing (ReindexPatient restores
// it) or stale (readers skip it).
func (s *Store) syncWorklist(ctx context.Context, p store.Patient, old store.WorklistDates, force bool) error {
	if p.Worklist == old && !force {
		return nil
	}
	for _, l := range store.AllWorklists {
		was, is := old.Get(l), p.Worklist.Get(l)
		key := s.k.worklist(p.PharmacyID, l)
		if was != is && !was.IsZero() {
			s.zrem(ctx, key, worklistMember(was, p.ID))
		}
		if !is.IsZero() && (was != is || force) {
			if err := s.zaddLex(ctx, key, worklistMember(is, p.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListWorklist implements store.Worklists.
func (s *Store) ListWorklist(ctx context.Context, pharmacyID string, l store.Worklist, through store.Date, after store.WorklistCursor, limit int) ([]store.WorklistEntry, error) {
	const opName = "redisstore.ListWorklist"
	if limit <= 0 || through.IsZero() {
		return nil, nil
	}
	key := s.k.worklist(pharmacyID, l)
	lo := "-"
	if !after.Due.IsZero() {
		lo = "(" + worklistMember(after.Due, after.PatientID)
	}
	hi := "(" + strconv.FormatInt(dEnc(through.AddDays(1)), 10)
	var out []store.WorklistEntry
	for len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, s.fail(opName, err)
		}
		want := limit - len(out)
		cctx, cancel := s.call(ctx)
		members, err := s.rdb.ZRangeByLex(cctx, key, &redis.ZRangeBy{Min: lo, Max: hi, Count: int64(want)}).Result()
		cancel()
		if err != nil {
			return nil, s.fail(opName, err)
		}
		if len(members) == 0 {
			break
		}
		type cand struct {
			due store.Date
			id  string
		}
		cands := make([]cand, 0, len(members))
		for _, m := range members {
			d, id, ok := strings.Cut(m, "|")
			n, err := strconv.ParseInt(d, 10, 64)
			if !ok || err != nil {
				continue
			}
			cands = append(cands, cand{dDec(n), id})
		}
		ids := make([]string, len(cands))
		for i, c := range cands {
			ids[i] = c.id
		}
		cctx, cancel = s.call(ctx)
		ps, err := s.getPatients(cctx, ids, true)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		for i, p := range ps {
			if p.ID == "" || p.PharmacyID != pharmacyID || p.Worklist.Get(l) != cands[i].due {
				s.zrem(ctx, key, worklistMember(cands[i].due, cands[i].id)) // stale: best effort
				continue
			}
			out = append(out, store.WorklistEntry{Due: cands[i].due, Patient: p})
		}
		lo = "(" + members[len(members)-1]
		if len(members) < want {
			break
		}
	}
	return out, nil
}

// SetWorklistDates implements store.Worklists: a compare-and-set on the
// record's header (format and version), which it keeps.
func (s *Store) SetWorklistDates(ctx context.Context, patientID string, version int64, dates store.WorklistDates) error {
	const opName = "redisstore.SetWorklistDates"
	cur, header, dk, err := s.readPatient(ctx, patientID)
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	if cur.Version != version {
		return fmt.Errorf("%s: %w", opName, store.ErrConflict)
	}
	if cur.Worklist == dates {
		return nil
	}
	next := cur
	next.Worklist = dates
	if dk, err = s.keyForWrite(ctx, patientID, dk); err != nil {
		return s.fail(opName, err)
	}
	rec, err := s.sealPatient(dk, next)
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	status, _, err := s.run(ctx, s.scripts.casVersioned, s.k.patient(patientID), header, rec)
	if err != nil {
		return s.fail(opName, err)
	}
	switch status {
	case stOK:
	case stNotFound:
		return fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	case stConflict:
		return fmt.Errorf("%s: %w", opName, store.ErrConflict)
	default:
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	if err := s.syncWorklist(ctx, next, cur.Worklist, false); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// ReindexPatient implements store.Worklists.
func (s *Store) ReindexPatient(ctx context.Context, patientID string) error {
	const opName = "redisstore.ReindexPatient"
	p, err := s.GetPatient(ctx, patientID)
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	if err := s.syncWorklist(ctx, p, p.Worklist, true); err != nil {
		return s.fail(opName, err)
	}
	return nil
}
