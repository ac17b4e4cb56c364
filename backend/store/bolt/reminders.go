package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.Reminders = (*Store)(nil)

// Reminder buckets. The due-time index is one shard: one process owns the
// file, so there is nothing to spread.
//
//	reminders_due   due (unix ms, 8 bytes BE) + key → ""   ordered by due time
//	reminders_keys  key → due (8 bytes)                   where a key sits in reminders_due
//	reminders_lease key → due before the first lease (8 bytes), while claimed
//	                and not settled or rescheduled (a claim that finds it is a
//	                takeover: Reclaimed)
//	reminders_sent  key → dedupe expiry (8 bytes)         keys acknowledged as sent
//	reminders_sexp  expiry (8 bytes) + key → ""           sent keys by expiry, for pruning
//	notifications   patient → {key → Notification}
//	doses           patient → {occurrence id → DoseRecord}
var (
	bucketRemindersDue  = []byte("reminders_due")
	bucketReminderKeys  = []byte("reminders_keys")
	bucketReminderLease = []byte("reminders_lease")
	bucketRemindersSent = []byte("reminders_sent")
	bucketRemindersSExp = []byte("reminders_sexp")
	bucketNotifications = []byte("notifications")
	bucketDoses         = []byte("doses")
)

func msKey(t time.Time, key string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), uint64(max(t.UnixMilli(), 0)))
	return append(b, key...)
}

// ReminderShards is 1: the embedded store has one index.
func (s *Store) ReminderShards() int { return 1 }

// ReminderShard is always 0.
func (s *Store) ReminderShard(string) int { return 0 }

// unindex removes key from the due index, if present.
func unindex(tx *bbolt.Tx, key string) error {
	keys := tx.Bucket(bucketReminderKeys)
	at := keys.Get([]byte(key))
	if at == nil {
		return nil
	}
	if err := tx.Bucket(bucketRemindersDue).Delete(append(slices.Clone(at), key...)); err != nil {
		return err
	}
	return keys.Delete([]byte(key))
}

// release ends key's lease record (settled, rescheduled or cancelled).
func release(tx *bbolt.Tx, key string) error {
	return tx.Bucket(bucketReminderLease).Delete([]byte(key))
}

// index puts key in the due index at t, moving it if present.
func index(tx *bbolt.Tx, key string, t time.Time) error {
	if err := unindex(tx, key); err != nil {
		return err
	}
	k := msKey(t, key)
	if err := tx.Bucket(bucketRemindersDue).Put(k, nil); err != nil {
		return err
	}
	return tx.Bucket(bucketReminderKeys).Put([]byte(key), k[:8])
}

// ScheduleReminders removes cancel and adds add, in one transaction.
func (s *Store) ScheduleReminders(ctx context.Context, patientID string, add, cancel []store.Reminder) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		for _, r := range cancel {
			if r.PatientID != patientID {
				return errors.New("reminder of another patient")
			}
			if err := unindex(tx, r.Key()); err != nil {
				return err
			}
			if err := release(tx, r.Key()); err != nil {
				return err
			}
		}
		for _, r := range add {
			if r.PatientID != patientID {
				return errors.New("reminder of another patient")
			}
			if err := index(tx, r.Key(), r.DueAt); err != nil {
				return err
			}
			if err := release(tx, r.Key()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt.ScheduleReminders: %w", err)
	}
	return nil
}

// ClaimDueReminders moves up to limit due keys to now+lease and returns
// them; keys already sent are dropped from the index.
func (s *Store) ClaimDueReminders(ctx context.Context, shard int, now time.Time, lease time.Duration, limit int) ([]store.Reminder, error) {
	if shard != 0 || limit <= 0 {
		return nil, nil
	}
	var out []store.Reminder
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		out = nil
		due, sent, leases := tx.Bucket(bucketRemindersDue), tx.Bucket(bucketRemindersSent), tx.Bucket(bucketReminderLease)
		limitKey := binary.BigEndian.AppendUint64(nil, uint64(max(now.UnixMilli(), 0)))
		var claimed [][]byte
		c := due.Cursor()
		for k, _ := c.First(); k != nil && len(claimed) < limit && bytes.Compare(k[:8], limitKey) <= 0; k, _ = c.Next() {
			claimed = append(claimed, slices.Clone(k))
		}
		for _, k := range claimed {
			key := string(k[8:])
			if exp := sent.Get(k[8:]); exp != nil && int64(binary.BigEndian.Uint64(exp)) > now.UnixMilli() {
				if err := unindex(tx, key); err != nil {
					return err
				}
				if err := release(tx, key); err != nil {
					return err
				}
				continue
			}
			r, err := store.ParseReminderKey(key)
			if err != nil {
				return err
			}
			if first := leases.Get(k[8:]); first != nil {
				r.DueAt, r.Reclaimed = time.UnixMilli(int64(binary.BigEndian.Uint64(first))).UTC(), true
			} else {
				r.DueAt = time.UnixMilli(int64(binary.BigEndian.Uint64(k[:8]))).UTC()
				if err := leases.Put(k[8:], slices.Clone(k[:8])); err != nil {
					return err
				}
			}
			if err := index(tx, key, now.Add(lease)); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ClaimDueReminders: %w", err)
	}
	return out, nil
}

// RenewReminderLeases moves those of rs still leased at now to now+lease.
func (s *Store) RenewReminderLeases(ctx context.Context, shard int, rs []store.Reminder, now time.Time, lease time.Duration) (int, error) {
	if shard != 0 || len(rs) == 0 {
		return 0, nil
	}
	n := 0
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		keys, leases := tx.Bucket(bucketReminderKeys), tx.Bucket(bucketReminderLease)
		deadline := now.Add(lease)
		for _, r := range rs {
			key := r.Key()
			at := keys.Get([]byte(key))
			if at == nil || leases.Get([]byte(key)) == nil {
				continue
			}
			ms := int64(binary.BigEndian.Uint64(at))
			if ms <= now.UnixMilli() {
				continue // the lease ran out: no longer this claim's
			}
			n++
			if ms < deadline.UnixMilli() {
				if err := index(tx, key, deadline); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt.RenewReminderLeases: %w", err)
	}
	return n, nil
}

// AckReminders removes done (remembering them as sent) and adds next.
func (s *Store) AckReminders(ctx context.Context, shard int, done, next []store.Reminder, now time.Time, dedupeWindow time.Duration) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error { return ack(tx, done, next, now, dedupeWindow) })
	if err != nil {
		return fmt.Errorf("bolt.AckReminders: %w", err)
	}
	return nil
}

// SettleReminders appends the history and acknowledges the batch in one
// transaction (one commit, one fsync).
func (s *Store) SettleReminders(ctx context.Context, shard int, st store.Settlement) error {
	if len(st.Sent) > 0 && st.HistoryKeep <= 0 {
		return fmt.Errorf("bolt.SettleReminders: keep must be positive, got %d", st.HistoryKeep)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if err := s.appendNotifications(tx, st.Sent, st.HistoryKeep); err != nil {
			return err
		}
		return ack(tx, st.Done, st.Next, st.Now, st.DedupeWindow)
	})
	if err != nil {
		return fmt.Errorf("bolt.SettleReminders: %w", err)
	}
	return nil
}

func ack(tx *bbolt.Tx, done, next []store.Reminder, now time.Time, dedupeWindow time.Duration) error {
	sent, sexp := tx.Bucket(bucketRemindersSent), tx.Bucket(bucketRemindersSExp)
	// Prune dedupe keys that have expired (a bounded batch).
	c := sexp.Cursor()
	var old [][]byte
	for k, _ := c.First(); k != nil && len(old) < 1000 && int64(binary.BigEndian.Uint64(k[:8])) <= now.UnixMilli(); k, _ = c.Next() {
		old = append(old, slices.Clone(k))
	}
	for _, k := range old {
		if err := sexp.Delete(k); err != nil {
			return err
		}
		if v := sent.Get(k[8:]); v != nil && bytes.Equal(v, k[:8]) {
			if err := sent.Delete(k[8:]); err != nil {
				return err
			}
		}
	}
	exp := now.Add(dedupeWindow)
	for _, r := range done {
		key := r.Key()
		if err := unindex(tx, key); err != nil {
			return err
		}
		if err := release(tx, key); err != nil {
			return err
		}
		k := msKey(exp, key)
		if err := sent.Put([]byte(key), k[:8]); err != nil {
			return err
		}
		if err := sexp.Put(k, nil); err != nil {
			return err
		}
	}
	for _, r := range next {
		if err := index(tx, r.Key(), r.DueAt); err != nil {
			return err
		}
		if err := release(tx, r.Key()); err != nil {
			return err
		}
	}
	return nil
}

// AppendNotifications adds to each patient's history and trims it to keep.
func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification, keep int) error {
	if keep <= 0 {
		return fmt.Errorf("bolt.AppendNotifications: keep must be positive, got %d", keep)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error { return s.appendNotifications(tx, ns, keep) })
	if err != nil {
		return fmt.Errorf("bolt.AppendNotifications: %w", err)
	}
	return nil
}

// appendNotifications stores ns and trims the histories they touched;
// a history is decoded only when it holds more than keep entries.
func (s *Store) appendNotifications(tx *bbolt.Tx, ns []store.Notification, keep int) error {
	touched := map[string]bool{}
	for _, n := range ns {
		b, err := tx.Bucket(bucketNotifications).CreateBucketIfNotExists([]byte(n.PatientID))
		if err != nil {
			return err
		}
		if err := putSealed(s, b, n.PatientID, kindNotification, n.Key, n.PatientID+"/"+n.Key, n); err != nil {
			return err
		}
		touched[n.PatientID] = true
	}
	for pid := range touched {
		b := tx.Bucket(bucketNotifications).Bucket([]byte(pid))
		count, c := 0, b.Cursor()
		for k, _ := c.First(); k != nil && count <= keep; k, _ = c.Next() {
			count++
		}
		if count <= keep {
			continue
		}
		all, err := s.notifications(b, pid)
		if err != nil {
			return err
		}
		for _, n := range all[min(keep, len(all)):] {
			if err := b.Delete([]byte(n.Key)); err != nil {
				return err
			}
		}
	}
	return nil
}

// notifications returns a patient's history, newest first.
func (s *Store) notifications(b *bbolt.Bucket, patientID string) ([]store.Notification, error) {
	var all []store.Notification
	err := b.ForEach(func(k, v []byte) error {
		n, err := openValue[store.Notification](s, b.Tx(), kindNotification, patientID+"/"+string(k), v)
		if err != nil {
			return fmt.Errorf("notification %s: %w", k, err)
		}
		all = append(all, n)
		return nil
	})
	slices.SortStableFunc(all, func(a, b store.Notification) int {
		if c := b.SentAt.Compare(a.SentAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(b.Key), []byte(a.Key))
	})
	return all, err
}

// ListNotifications returns up to limit notifications, newest first.
func (s *Store) ListNotifications(ctx context.Context, patientID string, limit int) ([]store.Notification, error) {
	var out []store.Notification
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketNotifications).Bucket([]byte(patientID))
		if b == nil || limit <= 0 {
			return nil
		}
		all, err := s.notifications(b, patientID)
		out = all[:min(limit, len(all))]
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListNotifications: %w", err)
	}
	return out, nil
}

// RecordDose stores a confirmation and trims the oldest occurrences.
func (s *Store) RecordDose(ctx context.Context, d store.DoseRecord, keep int) error {
	if keep <= 0 {
		return fmt.Errorf("bolt.RecordDose: keep must be positive, got %d", keep)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if d.PatientID == "" || d.OccurrenceID == "" {
			return errors.New("empty patient or occurrence id")
		}
		b, err := tx.Bucket(bucketDoses).CreateBucketIfNotExists([]byte(d.PatientID))
		if err != nil {
			return err
		}
		if err := putSealed(s, b, d.PatientID, kindDose, d.OccurrenceID, d.PatientID+"/"+d.OccurrenceID, d); err != nil {
			return err
		}
		n := 0
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		if n <= keep {
			return nil
		}
		var all []store.DoseRecord
		err = b.ForEach(func(k, v []byte) error {
			r, err := openValue[store.DoseRecord](s, tx, kindDose, d.PatientID+"/"+string(k), v)
			all = append(all, r)
			return err
		})
		if err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b store.DoseRecord) int { return b.Occurrence.Compare(a.Occurrence) })
		for _, r := range all[min(keep, len(all)):] {
			if err := b.Delete([]byte(r.OccurrenceID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt.RecordDose: %w", err)
	}
	return nil
}

// GetDose returns an occurrence's confirmation or store.ErrNotFound.
func (s *Store) GetDose(ctx context.Context, patientID, occurrenceID string) (store.DoseRecord, error) {
	var d store.DoseRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDoses).Bucket([]byte(patientID))
		if b == nil {
			return store.ErrNotFound
		}
		var err error
		d, err = getSealed[store.DoseRecord](s, b, kindDose, occurrenceID, patientID+"/"+occurrenceID)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("bolt.GetDose: %w", err)
	}
	return d, nil
}

// LoadReminderContext reads the patients of rs and their dose
// confirmations in one read transaction.
func (s *Store) LoadReminderContext(ctx context.Context, rs []store.Reminder) (store.ReminderContext, error) {
	out := store.ReminderContext{Patients: map[string]store.Patient{}, Doses: map[string]store.DoseRecord{}}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for _, r := range rs {
			if _, ok := out.Patients[r.PatientID]; !ok {
				p, err := s.getPatient(tx.Bucket(bucketPatients), r.PatientID)
				switch {
				case err == nil:
					out.Patients[r.PatientID] = p
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
			}
			if r.Kind != store.ReminderDose && r.Kind != store.ReminderMissedDose {
				continue
			}
			b := tx.Bucket(bucketDoses).Bucket([]byte(r.PatientID))
			if b == nil {
				continue
			}
			occ := r.DoseOccurrenceID()
			d, err := getSealed[store.DoseRecord](s, b, kindDose, occ, r.PatientID+"/"+occ)
			switch {
			case err == nil:
				out.Doses[store.DoseKey(r.PatientID, occ)] = d
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.ReminderContext{}, fmt.Errorf("bolt.LoadReminderContext: %w", err)
	}
	return out, nil
}
