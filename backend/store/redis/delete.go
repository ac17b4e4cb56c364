package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// DeletePatient (store.AtRest) on Redis. What names a patient is spread
// over slots: their own ({p:<id>}: record, data key, code, audit windows,
// change log, thread list, doses, invite list), their threads ({th:…}),
// their pharmacy's indexes ({ph:…}: patients, inbox, feed, work lists),
// the name+DOB index, activation-code and invite keys, the reminder
// shard ({rq:n}) and caregivers' accounts. A Cluster cannot delete them in
// one step, so the delete is a plan carried out in order:
//
//  1. Before anything is deleted, while the data key still opens the
//     patient's values, the keys and index entries to remove elsewhere
//     are gathered (ids, blind indexes and key names only, no PHI) and
//     stored in the patient's slot, mtm:{p:<id>}:erase.
//  2. The wrapped data key is deleted (crypto-shredding: every copy of the
//     patient's ciphertext, in an AOF, a backup or a replica, is now
//     unreadable), and the vault forgets it.
//  3. Everything in the plan is deleted slot by slot, the caregivers'
//     accounts drop the patient, the patient's own slot goes last and the
//     plan with it.
//
// A call that stops half way leaves the plan: the next call finds it and
// carries it out again (every step is idempotent).

func (k keys) patientErase(id string) string { return k.tag("p", id) + ":erase" }

// erasureWire is the plan of a delete (see above).
type erasureWire struct {
	PharmacyID string              `cbor:"1,keyasint,omitempty"`
	Caregivers []string            `cbor:"2,keyasint,omitempty"`
	Threads    []string            `cbor:"3,keyasint,omitempty"`
	ZRem       map[string][]string `cbor:"4,keyasint,omitempty"` // sorted-set entries elsewhere
	SRem       map[string][]string `cbor:"5,keyasint,omitempty"` // set entries elsewhere
	Del        []string            `cbor:"6,keyasint,omitempty"` // keys elsewhere
	Counts     map[string]int      `cbor:"7,keyasint,omitempty"`
}

// patientSlotKeys are the patient's own keys, deleted last (the plan
// after them).
func (s *Store) patientSlotKeys(id string) []string {
	return []string{
		s.k.patient(id), s.k.patientCode(id), s.k.audit(id), s.k.auditRefused(id), s.k.patientChanges(id),
		s.k.patientParts(id), s.k.patientThreads(id), s.k.doses(id), s.k.doseIndex(id), s.k.patientInvites(id),
	}
}

// DeletePatient implements store.AtRest.
func (s *Store) DeletePatient(ctx context.Context, id string) (store.Erased, error) {
	const opName = "redisstore.DeletePatient"
	plan, err := s.erasurePlan(ctx, id)
	if err != nil {
		return store.Erased{}, fmt.Errorf("%s: %w", opName, err)
	}
	// 2. The wrapped key first.
	if err := s.del(ctx, s.k.patientKey(id)); err != nil {
		return store.Erased{}, s.fail(opName, err)
	}
	s.vault.Forget(id)
	s.patients.Forget(id)
	s.wrapped.drop(id)
	// 3. The rest.
	if err := s.carryOut(ctx, id, plan); err != nil {
		return store.Erased{}, s.fail(opName, err)
	}
	return store.Erased{PatientID: id, PharmacyID: plan.PharmacyID, Counts: plan.Counts}, nil
}

// erasurePlan returns the stored plan of an unfinished delete or gathers
// and stores a new one; store.ErrNotFound when there is no such patient.
func (s *Store) erasurePlan(ctx context.Context, id string) (erasureWire, error) {
	var plan erasureWire
	b, err := s.get(ctx, s.k.patientErase(id))
	switch {
	case err == nil:
		if err := s.decode(b, &plan); err != nil {
			return erasureWire{}, err
		}
		return plan, nil
	case !errors.Is(err, redis.Nil):
		return erasureWire{}, s.fail("erasure plan", err)
	}
	p, _, dk, err := s.readPatient(ctx, id)
	if err != nil {
		return erasureWire{}, err
	}
	plan = erasureWire{PharmacyID: p.PharmacyID, ZRem: map[string][]string{}, SRem: map[string][]string{}, Counts: map[string]int{}}
	zrem := func(key, member string) { plan.ZRem[key] = append(plan.ZRem[key], member) }
	zrem(s.k.pharmacyPatients(p.PharmacyID), id)
	for _, l := range store.AllWorklists {
		if d := p.Worklist.Get(l); !d.IsZero() {
			zrem(s.k.worklist(p.PharmacyID, l), worklistMember(d, id))
		}
	}
	plan.SRem[s.nameDOBKey(p.PharmacyID, p.FamilyName, p.DateOfBirth)] = []string{id}
	for _, g := range p.Grants {
		if !slices.Contains(plan.Caregivers, g.CaregiverID) {
			plan.Caregivers = append(plan.Caregivers, g.CaregiverID)
		}
	}
	plan.Counts["grants"] = len(p.Grants)

	// Threads: their inbox and feed entries name them by id.
	cctx, cancel := s.call(ctx)
	defer cancel()
	members, err := s.rdb.ZRange(cctx, s.k.patientThreads(id), 0, -1).Result()
	if err != nil {
		return erasureWire{}, s.fail("threads", err)
	}
	threads, err := s.getThreads(cctx, members)
	if err != nil {
		return erasureWire{}, s.fail("threads", err)
	}
	for i := range members {
		t, ok := threads[i]
		if !ok || t.PatientID != id {
			continue
		}
		plan.Threads = append(plan.Threads, t.ID)
		for _, st := range store.ThreadStates {
			// Every state: a move that stopped half way leaves an entry.
			zrem(s.k.inbox(t.PharmacyID, st), inboxMember(t))
		}
		zrem(s.k.inboxFeed(t.PharmacyID), t.ID)
		n, err := s.rdb.ZCard(cctx, s.k.threadMsgs(t.ID)).Result()
		if err != nil {
			return erasureWire{}, s.fail("messages", err)
		}
		plan.Counts["messages"] += int(n)
	}
	plan.Counts["threads"] = len(plan.Threads)

	// The current activation code's index entry, the invites' keys.
	if raw, err := s.rdb.Get(cctx, s.k.patientCode(id)).Bytes(); err == nil {
		var w codeWire
		if err := s.decodeCode(dk, id, raw, &w); err == nil {
			plan.Del = append(plan.Del, s.codeKey(w.CodeHash), s.k.legacyCode(w.CodeHash))
			plan.Counts["codes"]++
		}
	} else if !errors.Is(err, redis.Nil) {
		return erasureWire{}, s.fail("code", err)
	}
	invites, err := s.rdb.SMembers(cctx, s.k.patientInvites(id)).Result()
	if err != nil {
		return erasureWire{}, s.fail("invites", err)
	}
	for _, blind := range invites {
		plan.Del = append(plan.Del, s.k.invite(blind))
	}
	plan.Counts["invites"] = len(invites)
	plan.Del = append(plan.Del, s.k.notifications(s.ReminderShard(id), id))
	for _, key := range []string{s.k.audit(id), s.k.auditRefused(id)} {
		n, err := s.rdb.ZCard(cctx, key).Result()
		if err != nil {
			return erasureWire{}, s.fail("audit", err)
		}
		plan.Counts["audit_events"] += int(n)
	}

	b, err = s.encode(plan)
	if err != nil {
		return erasureWire{}, err
	}
	key := s.k.patientErase(id)
	if err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder { return p.Set(cctx, key, b, 0) }); err != nil {
		return erasureWire{}, s.fail("erasure plan", err)
	}
	return plan, nil
}

// carryOut deletes what the plan names, then the patient's own slot and
// the plan.
func (s *Store) carryOut(ctx context.Context, id string, plan erasureWire) error {
	for _, th := range plan.Threads {
		if err := s.del(ctx, s.k.thread(th), s.k.threadMsgs(th), s.k.threadKeys(th)); err != nil {
			return err
		}
	}
	for key, members := range plan.ZRem {
		if err := s.write(ctx, key, func(p redis.Pipeliner) redis.Cmder { return p.ZRem(ctx, key, toAny(members)...) }); err != nil {
			return err
		}
	}
	for key, members := range plan.SRem {
		if err := s.write(ctx, key, func(p redis.Pipeliner) redis.Cmder { return p.SRem(ctx, key, toAny(members)...) }); err != nil {
			return err
		}
	}
	for _, key := range plan.Del {
		if err := s.del(ctx, key); err != nil {
			return err
		}
	}
	n, err := s.dropReminders(ctx, id)
	if err != nil {
		return err
	}
	if plan.Counts != nil && n > 0 {
		plan.Counts["reminders"] = n
	}
	for _, cg := range plan.Caregivers {
		_, err := s.UpdateAccount(ctx, cg, func(a store.Account) (store.Account, error) {
			a.PatientIDs = slices.DeleteFunc(slices.Clone(a.PatientIDs), func(p string) bool { return p == id })
			return a, nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := s.del(ctx, s.patientSlotKeys(id)...); err != nil {
		return err
	}
	return s.del(ctx, s.k.patientErase(id))
}

// dropReminders removes the patient's entries from their reminder shard
// (due set, leases, sent set) and returns how many were due.
func (s *Store) dropReminders(ctx context.Context, id string) (int, error) {
	sh := s.ReminderShard(id)
	prefix := id + "|"
	count := 0
	for _, key := range []string{s.k.reminderShard(sh), s.k.reminderSent(sh)} {
		var mine []string
		cctx, cancel := s.call(ctx)
		iter := s.rdb.ZScan(cctx, key, 0, "", 1000).Iterator()
		for i := 0; iter.Next(cctx); i++ {
			if i%2 == 0 && strings.HasPrefix(unpackMember(iter.Val()), prefix) {
				mine = append(mine, iter.Val())
			}
		}
		err := iter.Err()
		cancel()
		if err != nil {
			return 0, err
		}
		if len(mine) == 0 {
			continue
		}
		if key == s.k.reminderShard(sh) {
			count = len(mine)
			lease := s.k.reminderLease(sh)
			if err := s.write(ctx, lease, func(p redis.Pipeliner) redis.Cmder { return p.HDel(ctx, lease, mine...) }); err != nil {
				return 0, err
			}
		}
		if err := s.write(ctx, key, func(p redis.Pipeliner) redis.Cmder { return p.ZRem(ctx, key, toAny(mine)...) }); err != nil {
			return 0, err
		}
	}
	return count, nil
}

// del deletes keys (each on its own, so that they may live in different
// slots) under Options.Timeout, waiting for replicas like every write.
func (s *Store) del(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := s.write(ctx, key, func(p redis.Pipeliner) redis.Cmder { return p.Del(ctx, key) }); err != nil {
			return err
		}
	}
	return nil
}

// write sends one single-key write under Options.Timeout (see apply).
func (s *Store) write(ctx context.Context, key string, w func(redis.Pipeliner) redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.apply(cctx, key, w)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
