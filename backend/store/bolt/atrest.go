package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

var _ store.AtRest = (*Store)(nil)

// findLimit bounds FindPatients' answer.
const findLimit = 100

// FindPatients returns the pharmacy's patients with this family name
// (store.FoldName) and birth date, by id, at most 100, through the
// blind name and birth-date index; an entry whose record disagrees is
// skipped.
func (s *Store) FindPatients(ctx context.Context, pharmacyID, familyName string, birthDate store.Date) ([]store.Patient, error) {
	out := []store.Patient{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		prefix := s.nameDOBKey(pharmacyID, familyName, birthDate)
		patients := tx.Bucket(bucketPatients)
		c := tx.Bucket(bucketNameIndex).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < findLimit; k, _ = c.Next() {
			p, err := s.getPatient(patients, string(k[len(prefix):]))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if p.PharmacyID != pharmacyID || p.DateOfBirth != birthDate || store.FoldName(p.FamilyName) != store.FoldName(familyName) {
				continue // cannot happen: the entry is written with the record
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.FindPatients: %w", err)
	}
	return out, nil
}

// DeletePatient erases a patient in one transaction: their data key, then
// their record and every value and index entry that names them (threads
// and messages, the inbox and its feed, reminders and what was sent, dose
// records, the audit window, the change log, work lists, the name index,
// the activation code, caregiver invites, and their id in caregivers'
// accounts). store.ErrNotFound when there is neither a record nor a key.
//
// bbolt does not clear the pages it frees: they would keep the erased
// ciphertexts and the wrapped key until reused, so DeletePatient then
// overwrites the file's free pages (ScrubFreePages).
// Refresh tokens issued to the patient are left to expire: nothing they
// could refresh exists any more.
func (s *Store) DeletePatient(ctx context.Context, id string) (store.Erased, error) {
	var erased store.Erased
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		erased = store.Erased{PatientID: id, Counts: map[string]int{}}
		patients, keys := tx.Bucket(bucketPatients), tx.Bucket(bucketPatientKeys)
		hasKey := keys.Get([]byte(id)) != nil
		p, err := s.getPatient(patients, id)
		switch {
		case errors.Is(err, store.ErrNotFound) && !hasKey:
			return store.ErrNotFound
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		}
		// Read first what finding the rest needs (it is sealed).
		threads, err := s.patientThreads(tx, id)
		if err != nil {
			return err
		}
		var code store.ActivationCode
		codeKey := string(tx.Bucket(bucketCodesByPatient).Get([]byte(id)))
		if codeKey != "" {
			if code, err = getSealed[store.ActivationCode](s, tx.Bucket(bucketCodes), kindCode, codeKey, codeKey); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		// The key first: from here on nothing of theirs opens.
		if hasKey {
			if err := keys.Delete([]byte(id)); err != nil {
				return err
			}
			erased.Counts["data_keys"] = 1
		}
		if p.ID != "" {
			erased.PharmacyID = p.PharmacyID
			if err := patients.Delete([]byte(id)); err != nil {
				return err
			}
			erased.Counts["patients"] = 1
			if idx := tx.Bucket(bucketPharmacyIndex).Bucket([]byte(p.PharmacyID)); idx != nil {
				if err := idx.Delete([]byte(id)); err != nil {
					return err
				}
			}
			if err := s.syncNameIndex(tx, p, store.Patient{}, false); err != nil {
				return err
			}
			gone := p
			gone.Worklist = store.WorklistDates{}
			if err := syncWorklist(tx, gone, p.Worklist, false); err != nil {
				return err
			}
			n, err := s.dropFromCaregivers(tx, p)
			if err != nil {
				return err
			}
			erased.Counts["caregivers"] = n
		}
		if err := s.deleteThreads(tx, threads, erased.Counts); err != nil {
			return err
		}
		for _, b := range []struct {
			name        string
			bucket, cnt []byte
		}{
			{"audit_events", bucketAudit, bucketAuditCounts},
			{"audit_refusals", bucketAuditRefused, bucketAuditRefCounts},
			{"changes", bucketChanges, bucketParts},
			{"notifications", bucketNotifications, nil},
			{"doses", bucketDoses, nil},
			{"thread_index", bucketPatientThreads, nil},
		} {
			n, err := deleteNested(tx.Bucket(b.bucket), id)
			if err != nil {
				return err
			}
			erased.Counts[b.name] += n
			if b.cnt != nil {
				if err := tx.Bucket(b.cnt).Delete([]byte(id)); err != nil {
					return err
				}
			}
		}
		if codeKey != "" {
			for _, op := range []func() error{
				func() error { return tx.Bucket(bucketCodes).Delete([]byte(codeKey)) },
				func() error { return tx.Bucket(bucketCodesByPatient).Delete([]byte(id)) },
				func() error { return tx.Bucket(bucketExpiry).Delete(expiryKey(code.ExpiresAt, expiryCode, codeKey)) },
			} {
				if err := op(); err != nil {
					return err
				}
			}
			erased.Counts["activation_codes"] = 1
		}
		n, err := s.deletePatientInvites(tx, id)
		if err != nil {
			return err
		}
		erased.Counts["invites"] = n
		n, err = deletePatientReminders(tx, id)
		erased.Counts["reminders"] = n
		return err
	})
	if err != nil {
		return store.Erased{}, fmt.Errorf("bolt.DeletePatient: %w", err)
	}
	s.vault.Forget(id)
	s.patients.Forget(id)
	if err := s.ScrubFreePages(ctx); err != nil {
		// Erased all the same: the pages are reused, or the next pass scrubs.
		s.log.Warn("bolt: scrubbing free pages after a patient's deletion failed", "patient", id, "err", err)
	}
	for k, n := range erased.Counts {
		if n == 0 {
			delete(erased.Counts, k)
		}
	}
	return erased, nil
}

// patientThreads reads the patient's threads through their thread index.
func (s *Store) patientThreads(tx *bbolt.Tx, patientID string) ([]store.Thread, error) {
	idx := tx.Bucket(bucketPatientThreads).Bucket([]byte(patientID))
	if idx == nil {
		return nil, nil
	}
	var out []store.Thread
	err := idx.ForEach(func(k, _ []byte) error {
		t, err := s.indexedThread(tx, k)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		out = append(out, t)
		return err
	})
	return out, err
}

// deleteThreads removes threads with their messages, inbox entries and
// feed positions.
func (s *Store) deleteThreads(tx *bbolt.Tx, threads []store.Thread, counts map[string]int) error {
	for _, t := range threads {
		if inbox := tx.Bucket(bucketInbox).Bucket([]byte(t.PharmacyID)); inbox != nil {
			if st := inbox.Bucket([]byte(t.State)); st != nil {
				if err := st.Delete(inboxKey(t)); err != nil {
					return err
				}
			}
		}
		if feed := tx.Bucket(bucketInboxFeed).Bucket([]byte(t.PharmacyID)); feed != nil {
			if pos := feed.Bucket(subFeedPos); pos != nil {
				if v := pos.Get([]byte(t.ID)); v != nil {
					if err := feed.Bucket(subFeedSeq).Delete(slices.Clone(v)); err != nil {
						return err
					}
					if err := pos.Delete([]byte(t.ID)); err != nil {
						return err
					}
				}
			}
		}
		if msgs := tx.Bucket(bucketThreadMessages).Bucket([]byte(t.ID)); msgs != nil {
			if m := msgs.Bucket(subMessages); m != nil {
				counts["messages"] += m.Stats().KeyN
			}
			if err := tx.Bucket(bucketThreadMessages).DeleteBucket([]byte(t.ID)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketThreads).Delete([]byte(t.ID)); err != nil {
			return err
		}
		counts["threads"]++
	}
	return nil
}

// deleteNested deletes the nested bucket name of parent, if any, and
// returns how many keys it held.
func deleteNested(parent *bbolt.Bucket, name string) (int, error) {
	b := parent.Bucket([]byte(name))
	if b == nil {
		return 0, nil
	}
	n := b.Stats().KeyN
	return n, parent.DeleteBucket([]byte(name))
}

// dropFromCaregivers removes the patient from the accounts of the
// caregivers their grants name.
func (s *Store) dropFromCaregivers(tx *bbolt.Tx, p store.Patient) (int, error) {
	accounts := tx.Bucket(bucketAccounts)
	done, n := map[string]bool{}, 0
	for _, g := range p.Grants {
		if done[g.CaregiverID] {
			continue
		}
		done[g.CaregiverID] = true
		a, err := s.getAccount(accounts, g.CaregiverID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !slices.Contains(a.PatientIDs, p.ID) {
			continue
		}
		a.PatientIDs = slices.DeleteFunc(a.PatientIDs, func(id string) bool { return id == p.ID })
		a.Version++
		if err := s.putAccount(accounts, a); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// deletePatientInvites deletes the patient's caregiver invites (few: they
// expire within days, so the bucket is scanned).
func (s *Store) deletePatientInvites(tx *bbolt.Tx, patientID string) (int, error) {
	var keys []string
	err := tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
		inv, err := openValue[store.Invite](s, tx, kindInvite, string(k), v)
		if err != nil {
			return err
		}
		if inv.PatientID == patientID {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := s.deleteInvite(tx, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// deletePatientReminders removes the patient's reminders from the due
// index, their leases and their sent keys (all keyed "<patient>|…").
func deletePatientReminders(tx *bbolt.Tx, patientID string) (int, error) {
	prefix := []byte(patientID + "|")
	keysWith := func(b *bbolt.Bucket) [][]byte {
		var out [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, slices.Clone(k))
		}
		return out
	}
	indexed := keysWith(tx.Bucket(bucketReminderKeys))
	for _, k := range indexed {
		if err := unindex(tx, string(k)); err != nil {
			return 0, err
		}
	}
	leases := tx.Bucket(bucketReminderLease)
	for _, k := range keysWith(leases) {
		if err := leases.Delete(k); err != nil {
			return 0, err
		}
	}
	sent, sexp := tx.Bucket(bucketRemindersSent), tx.Bucket(bucketRemindersSExp)
	for _, k := range keysWith(sent) {
		if exp := sent.Get(k); len(exp) == 8 {
			if err := sexp.Delete(append(slices.Clone(exp), k...)); err != nil {
				return 0, err
			}
		}
		if err := sent.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(indexed), nil
}

// Reencrypt cursors: "p:<last patient id>" in the patient phase,
// "d:<last account id>" in the directory phase.
const (
	cursorPatients  = "p:"
	cursorDirectory = "d:"
)

// defaultReencryptLimit is ReencryptOptions.Limit's default.
const defaultReencryptLimit = 100

// Reencrypt runs one step of the re-encryption pass: one write
// transaction per patient, then one for a page of accounts (a concurrent
// write waits for the transaction, and none is lost).
// The patient phase goes through every id that has a record, a data key
// or per-patient values, in id order; the directory phase through the
// accounts, moving their clear e-mail index entries to blind ones, and in
// its last step the caregiver invites and rate-limit counters kept under
// clear keys. When the pass completes it overwrites the file's free pages
// (ScrubFreePages), where bbolt would otherwise keep the clear values the
// pass replaced.
func (s *Store) Reencrypt(ctx context.Context, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultReencryptLimit
	}
	var page store.ReencryptPage
	var dirAfter string
	switch {
	case cursor == "" || strings.HasPrefix(cursor, cursorPatients):
	case strings.HasPrefix(cursor, cursorDirectory):
		dirAfter = strings.TrimPrefix(cursor, cursorDirectory)
	default:
		return store.ReencryptPage{}, fmt.Errorf("bolt.Reencrypt: cursor %q was not made by Reencrypt", cursor)
	}
	if !strings.HasPrefix(cursor, cursorDirectory) {
		// One transaction per patient: the writer slot is held for one
		// patient's values at a time.
		last := strings.TrimPrefix(cursor, cursorPatients)
		for page.Patients < limit {
			var (
				step store.ReencryptPage
				id   string
			)
			err := s.update(ctx, func(tx *bbolt.Tx) error {
				step, id = store.ReencryptPage{}, ""
				ids := patientOwners(tx, last, 1)
				if len(ids) == 0 {
					return nil
				}
				id = ids[0]
				if err := s.reencryptPatient(tx, id, opts.RotateDataKeys, &step); err != nil {
					return fmt.Errorf("patient %s: %w", id, err)
				}
				return nil
			})
			if err != nil {
				return store.ReencryptPage{}, fmt.Errorf("bolt.Reencrypt: %w", err)
			}
			if id == "" {
				break // the patients are done
			}
			page.Patients++
			page.Resealed += step.Resealed
			page.Retired += step.Retired
			last = id
		}
		if page.Patients == limit {
			page.Next = cursorPatients + last
			return page, nil
		}
	}
	// The patients are done: the directory, from dirAfter.
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		dir := store.ReencryptPage{}
		last, n, err := s.reencryptAccounts(tx, dirAfter, limit, &dir)
		if err != nil {
			return err
		}
		if n == limit {
			dir.Next = cursorDirectory + last
		} else if err := s.reencryptLegacyKeys(tx, &dir); err != nil {
			return err
		} else if err := s.rewrapVaultKeys(tx); err != nil {
			return err
		}
		page.Next, page.Resealed = dir.Next, page.Resealed+dir.Resealed
		return nil
	})
	if err == nil && page.Next == "" {
		err = s.ScrubFreePages(ctx)
	}
	if err != nil {
		return store.ReencryptPage{}, fmt.Errorf("bolt.Reencrypt: %w", err)
	}
	return page, nil
}

// patientOwners returns up to limit ids after `after`, in order, that
// have a record, a data key or values of their own.
func patientOwners(tx *bbolt.Tx, after string, limit int) []string {
	seen := map[string]bool{}
	var ids []string
	for _, name := range [][]byte{bucketPatients, bucketPatientKeys, bucketAudit, bucketAuditRefused,
		bucketChanges, bucketNotifications, bucketDoses, bucketPatientThreads, bucketCodesByPatient} {
		c := tx.Bucket(name).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for n := 0; k != nil && n < limit; k, _ = c.Next() {
			if !seen[string(k)] {
				seen[string(k)] = true
				ids = append(ids, string(k))
			}
			n++
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))]
}

// resealer rewrites, under one data key, the values of a bucket that are
// not sealed under its primary version.
type resealer struct {
	s     *Store
	tx    *bbolt.Tx
	owner string
	key   *seal.DataKey
	count int
}

// bucket reseals every value of b (nil: none) of kind; id maps a key of b
// to the id its value's ciphertext is bound to.
func (r *resealer) bucket(b *bbolt.Bucket, kind string, id func(k []byte) string) error {
	if b == nil {
		return nil
	}
	type kv struct{ k, v []byte }
	var out []kv
	err := b.ForEach(func(k, v []byte) error {
		if v == nil || current(v, r.owner, r.key) {
			return nil // a nested bucket, or nothing to do
		}
		nv, err := r.reseal(kind, id(k), v)
		out = append(out, kv{slices.Clone(k), nv})
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range out {
		if err := b.Put(e.k, e.v); err != nil {
			return err
		}
	}
	r.count += len(out)
	return nil
}

// reseal returns value v of kind and id sealed under the key's primary
// version.
func (r *resealer) reseal(kind, id string, v []byte) ([]byte, error) {
	plain, err := r.s.plainBytes(r.tx, kind, id, v)
	if err != nil {
		return nil, err
	}
	return r.key.SealValue(kind, id, sealHeader(r.owner), plain)
}

// reencryptPatient gives the patient a data key if they have none,
// rotates it when asked, reseals every value of theirs that is not
// current, retires the versions nothing uses any more (rewrapping the
// key under the KEK's primary version) and indexes a record written
// before the name index.
func (s *Store) reencryptPatient(tx *bbolt.Tx, id string, rotate bool, page *store.ReencryptPage) error {
	keys := tx.Bucket(bucketPatientKeys)
	wrapped := slices.Clone(keys.Get([]byte(id)))
	var err error
	if wrapped == nil {
		if wrapped, err = s.vault.NewPatientKey(id); err != nil {
			return err
		}
	} else if rotate {
		if wrapped, err = s.vault.RotatePatientKey(id, wrapped); err != nil {
			return err
		}
	}
	if err := keys.Put([]byte(id), wrapped); err != nil {
		return err
	}
	dk, err := s.vault.PatientKey(id, wrapped)
	if err != nil {
		return err
	}
	r := &resealer{s: s, tx: tx, owner: id, key: dk}
	sub := func(parent []byte) *bbolt.Bucket { return tx.Bucket(parent).Bucket([]byte(id)) }

	patients := tx.Bucket(bucketPatients)
	if v := patients.Get([]byte(id)); v != nil && v[0] != formatSealedV1 {
		p, err := s.decodePatient(tx, id, v)
		if err != nil {
			return err
		}
		if err := s.syncNameIndex(tx, p, p, true); err != nil {
			return err
		}
	}
	steps := []struct {
		b    *bbolt.Bucket
		kind string
		id   func(k []byte) string
	}{
		{sub(bucketAudit), kindAudit, func(k []byte) string { return auditID(id, string(k)) }},
		{sub(bucketAuditRefused), kindAudit, func(k []byte) string { return auditID(id, string(k)) }},
		{sub(bucketChanges), kindChange, func(k []byte) string { return changeID(id, int64(binary.BigEndian.Uint64(k))) }},
		{sub(bucketNotifications), kindNotification, func(k []byte) string { return id + "/" + string(k) }},
		{sub(bucketDoses), kindDose, func(k []byte) string { return id + "/" + string(k) }},
	}
	for _, st := range steps {
		if err := r.bucket(st.b, st.kind, st.id); err != nil {
			return err
		}
	}
	if err := r.one(patients, kindPatient, id, id); err != nil {
		return err
	}
	threads, err := s.patientThreads(tx, id)
	if err != nil {
		return err
	}
	for _, t := range threads {
		if err := r.one(tx.Bucket(bucketThreads), kindThread, t.ID, t.ID); err != nil {
			return err
		}
		if msgs := tx.Bucket(bucketThreadMessages).Bucket([]byte(t.ID)); msgs != nil {
			err := r.bucket(msgs.Bucket(subMessages), kindMessage, func(k []byte) string {
				return messageID(t.ID, int64(binary.BigEndian.Uint64(k)))
			})
			if err != nil {
				return err
			}
		}
	}
	if err := s.reencryptCode(tx, r); err != nil {
		return err
	}
	page.Resealed += r.count

	// Every value is current: drop the other versions and rewrap the key
	// under the KEK's primary version.
	page.Retired += dk.Versions() - 1
	if wrapped, err = s.vault.RetirePatientKeys(id, wrapped); err != nil {
		return err
	}
	return keys.Put([]byte(id), wrapped)
}

// one reseals the single value under key in b, if it is there and not
// current.
func (r *resealer) one(b *bbolt.Bucket, kind, key, id string) error {
	v := b.Get([]byte(key))
	if v == nil || current(v, r.owner, r.key) {
		return nil
	}
	nv, err := r.reseal(kind, id, v)
	if err != nil {
		return err
	}
	r.count++
	return b.Put([]byte(key), nv)
}

// reencryptCode reseals the patient's activation code, moving one kept
// under its clear code hash to its blind index.
func (s *Store) reencryptCode(tx *bbolt.Tx, r *resealer) error {
	byPatient, codes := tx.Bucket(bucketCodesByPatient), tx.Bucket(bucketCodes)
	key := string(byPatient.Get([]byte(r.owner)))
	if key == "" {
		return nil
	}
	v := codes.Get([]byte(key))
	if v == nil {
		return nil
	}
	c, err := openValue[store.ActivationCode](s, tx, kindCode, key, v)
	if err != nil {
		return err
	}
	blindKey := s.vault.Blind(blindCode, c.CodeHash)
	if key == blindKey {
		return r.one(codes, kindCode, key, key)
	}
	plain, err := s.plainBytes(tx, kindCode, key, v)
	if err != nil {
		return err
	}
	nv, err := r.key.SealValue(kindCode, blindKey, sealHeader(r.owner), plain)
	if err != nil {
		return err
	}
	exp := tx.Bucket(bucketExpiry)
	for _, op := range []func() error{
		func() error { return codes.Delete([]byte(key)) },
		func() error { return codes.Put([]byte(blindKey), nv) },
		func() error { return byPatient.Put([]byte(r.owner), []byte(blindKey)) },
		func() error { return exp.Delete(expiryKey(c.ExpiresAt, expiryCode, key)) },
		func() error { return exp.Put(expiryKey(c.ExpiresAt, expiryCode, blindKey), nil) },
	} {
		if err := op(); err != nil {
			return err
		}
	}
	r.count++
	return nil
}

// reencryptAccounts seals up to limit accounts after `after` under the
// directory key and moves their e-mail index entries to blind keys. It
// returns the last account id it went through and how many.
func (s *Store) reencryptAccounts(tx *bbolt.Tx, after string, limit int, page *store.ReencryptPage) (string, int, error) {
	accounts, emails := tx.Bucket(bucketAccounts), tx.Bucket(bucketAccountEmails)
	r := &resealer{s: s, tx: tx, owner: "", key: s.vault.Directory()}
	var ids []string
	c := accounts.Cursor()
	k, _ := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, _ = c.Next()
	}
	for ; k != nil && len(ids) < limit; k, _ = c.Next() {
		ids = append(ids, string(k))
	}
	for _, id := range ids {
		if err := r.one(accounts, kindAccount, id, id); err != nil {
			return "", 0, err
		}
		a, err := s.getAccount(accounts, id)
		if err != nil {
			return "", 0, err
		}
		blindKey := []byte(s.vault.Blind(blindEmail, a.Email))
		if emails.Get(blindKey) == nil {
			if err := emails.Put(blindKey, []byte(id)); err != nil {
				return "", 0, err
			}
			r.count++
		}
		if a.Email != "" && string(emails.Get([]byte(a.Email))) == id {
			if err := emails.Delete([]byte(a.Email)); err != nil {
				return "", 0, err
			}
		}
	}
	page.Resealed += r.count
	last := after
	if len(ids) > 0 {
		last = ids[len(ids)-1]
	}
	return last, len(ids), nil
}

// isBlind reports whether an index key is a blind index (32 hex digits).
func isBlind(k []byte) bool {
	if len(k) != 32 {
		return false
	}
	for _, c := range k {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// reencryptLegacyKeys moves caregiver invites kept under clear code
// hashes (or not sealed) to blind keys, sealed, and deletes rate-limit
// counters kept under clear keys (they hold e-mails and addresses; a
// throttle window restarts once). Both expire within days, so the buckets
// are scanned whole once per pass.
func (s *Store) reencryptLegacyKeys(tx *bbolt.Tx, page *store.ReencryptPage) error {
	invites, exp := tx.Bucket(bucketInvites), tx.Bucket(bucketExpiry)
	dir := s.vault.Directory()
	type move struct {
		old string
		inv store.Invite
	}
	var moves []move
	err := invites.ForEach(func(k, v []byte) error {
		if isBlind(k) && current(v, "", dir) {
			return nil
		}
		inv, err := openValue[store.Invite](s, tx, kindInvite, string(k), v)
		moves = append(moves, move{string(k), inv})
		return err
	})
	if err != nil {
		return err
	}
	for _, m := range moves {
		key := s.vault.Blind(blindInvite, m.inv.CodeHash)
		enc, err := encode(s.codec, m.inv)
		if err != nil {
			return err
		}
		nv, err := dir.SealValue(kindInvite, key, sealHeader(""), enc[1:])
		if err != nil {
			return err
		}
		if err := invites.Delete([]byte(m.old)); err != nil {
			return err
		}
		if err := exp.Delete(expiryKey(m.inv.ExpiresAt, expiryInvite, m.old)); err != nil {
			return err
		}
		if err := invites.Put([]byte(key), nv); err != nil {
			return err
		}
		if err := exp.Put(expiryKey(m.inv.ExpiresAt, expiryInvite, key), nil); err != nil {
			return err
		}
	}
	page.Resealed += len(moves)

	counters := tx.Bucket(bucketCounters)
	var clear [][]byte
	err = counters.ForEach(func(k, _ []byte) error {
		if !isBlind(k) {
			clear = append(clear, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range clear {
		if cur, err := get[counter](counters, s.codec, string(k)); err == nil {
			if err := exp.Delete(expiryKey(cur.end(), expiryCounter, string(k))); err != nil {
				return err
			}
		}
		if err := counters.Delete(k); err != nil {
			return err
		}
	}
	page.Resealed += len(clear)
	return nil
}
