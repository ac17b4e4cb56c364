package api

import (
	"container/list"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The patient-side reads convert the same record into the same answer
// again and again (a phone opens the app, a caregiver looks at the list).
// answerCache keeps the last PML and plan answer built for each patient
// (GetMedicationList, GetActionPlan), with the parts
// of the record it was built from, and gives it out again when the record
// just read holds the same values in every field the conversion reads.
// The check is on content, not on a version number: a record changed by
// another instance, or deleted and written again, differs in what the
// conversion reads or gives the same answer. It runs after the record has
// been read and the caller's access checked against it, so the access
// check, the audit event and the conditional read are the same with or
// without it. An answer it gives out is shared by every caller: nothing
// may change it (Connect only encodes it; the protobuf codec writes it
// from the encoding kept with it, see protoCodec).
//
// Bounded by entries, least recently used out first; DeletePatient drops
// an erased patient's answers at once (their clear values must not
// outlive them in memory here; other instances' copies go as they age
// out, and no read can reach them: the record is gone).
type answerCache struct {
	max int

	mu   sync.Mutex
	lru  list.List // of *answer, most recently used first
	byID map[answerKey]*list.Element
}

// defaultAnswers is how many answers a cache keeps: a 20-medicine list
// costs about 15 KB (the rows it compares, its messages and encoding)
// beyond the record cache's copy of the same strings, so at most about
// 30 MB.
const defaultAnswers = 2048

type answerKind uint8

const (
	answerPML  answerKind = iota // GetMedicationList
	answerPlan                   // GetActionPlan
)

// answerKinds says, for each kind, which record fields its answer reads,
// how to compare them and how to build the answer.
var answerKinds = [...]struct {
	fields func(store.Patient) store.Patient
	same   func(a, b store.Patient) bool
	build  func(store.Patient) proto.Message
}{
	answerPML:  {pmlFields, samePMLFields, func(p store.Patient) proto.Message { return medicationListToProto(p) }},
	answerPlan: {planFields, samePlanFields, func(p store.Patient) proto.Message { return actionPlanToProto(p) }},
}

type answerKey struct {
	patientID string
	kind      answerKind
}

type answer struct {
	key answerKey
	src store.Patient // the fields the answer was built from, never changed
	msg proto.Message
	// enc is msg's protobuf encoding, made by the first binary answer
	// that carries msg (encoded).
	enc atomic.Pointer[[]byte]
}

func newAnswerCache(max int) *answerCache {
	if max <= 0 {
		max = defaultAnswers
	}
	return &answerCache{max: max, byID: make(map[answerKey]*list.Element)}
}

// medicationList returns the PML of p (medicationListToProto), the one
// built before when p's PML fields are the same. The caller must own p's
// slices and not change them afterwards (the cache may keep them). A nil
// cache only converts.
func (c *answerCache) medicationList(p store.Patient) *mtmv1.PersonalMedicationList {
	return c.get(p, answerPML).(*mtmv1.PersonalMedicationList)
}

// actionPlan is medicationList for the Medication Action Plan
// (actionPlanToProto).
func (c *answerCache) actionPlan(p store.Patient) *mtmv1.MedicationActionPlan {
	return c.get(p, answerPlan).(*mtmv1.MedicationActionPlan)
}

func (c *answerCache) get(p store.Patient, kind answerKind) proto.Message {
	k := &answerKinds[kind]
	if c == nil {
		return k.build(p)
	}
	key := answerKey{p.ID, kind}
	c.mu.Lock()
	if el, ok := c.byID[key]; ok {
		a := el.Value.(*answer)
		if k.same(a.src, p) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return a.msg
		}
	}
	c.mu.Unlock()
	msg := k.build(p)
	c.put(&answer{key: key, src: k.fields(p), msg: msg})
	return msg
}

func (c *answerCache) put(a *answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[a.key]; ok {
		el.Value = a
		c.lru.MoveToFront(el)
		return
	}
	c.byID[a.key] = c.lru.PushFront(a)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byID, old.Value.(*answer).key)
	}
}

// encoded returns the protobuf encoding of msg, the answer of kind for
// patientID, when msg is the one this cache holds for them now (made once,
// then shared), else nil.
func (c *answerCache) encoded(patientID string, kind answerKind, msg proto.Message) []byte {
	if c == nil || msg == nil {
		return nil
	}
	c.mu.Lock()
	var a *answer
	if el, ok := c.byID[answerKey{patientID, kind}]; ok {
		a = el.Value.(*answer)
	}
	c.mu.Unlock()
	if a == nil || a.msg != msg {
		return nil
	}
	if b := a.enc.Load(); b != nil {
		return *b
	}
	b, err := proto.MarshalOptions{}.Marshal(msg)
	if err != nil {
		return nil
	}
	a.enc.Store(&b)
	return b
}

// forget drops every answer of the patient (erased).
func (c *answerCache) forget(patientID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for kind := range answerKinds {
		key := answerKey{patientID, answerKind(kind)}
		if el, ok := c.byID[key]; ok {
			c.lru.Remove(el)
			delete(c.byID, key)
		}
	}
}

// pmlFields is the part of p medicationListToProto reads: what the cache
// keeps to compare the next record with (the rows without their history,
// which the PML does not show and the cache need not hold).
func pmlFields(p store.Patient) store.Patient {
	meds := slices.Clone(p.Medications)
	for i := range meds {
		meds[i].History = nil
	}
	return store.Patient{ID: p.ID, OtherInformation: p.OtherInformation, UpdatedAt: p.UpdatedAt,
		Medications: meds, Allergies: p.Allergies, Fills: p.Fills}
}

// samePMLFields reports whether medicationListToProto gives the same
// answer for a and b because every field it reads is equal.
// TestSamePMLFieldsSeesEveryChange fails when the conversion reads a field
// this does not compare.
func samePMLFields(a, b store.Patient) bool {
	return a.ID == b.ID && a.OtherInformation == b.OtherInformation && a.UpdatedAt.Equal(b.UpdatedAt) &&
		slices.EqualFunc(a.Medications, b.Medications, sameMedicationRow) &&
		slices.Equal(a.Allergies, b.Allergies) && slices.Equal(a.Fills, b.Fills)
}

// sameMedicationRow compares every field of a PML row but its history,
// which the PML does not show.
func sameMedicationRow(a, b store.Medication) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Strength == b.Strength && a.RxCUI == b.RxCUI &&
		a.HowIUseIt == b.HowIUseIt && a.WhyIUseIt == b.WhyIUseIt && a.Prescriber == b.Prescriber &&
		a.PrescriberPhone == b.PrescriberPhone && a.StartedOn == b.StartedOn && a.StoppedOn == b.StoppedOn &&
		a.WhyStopped == b.WhyStopped && a.UpdatedAt.Equal(b.UpdatedAt) && a.UpdatedBy == b.UpdatedBy &&
		a.Version == b.Version
}

// planFields is the part of p actionPlanToProto reads.
func planFields(p store.Patient) store.Patient {
	return store.Patient{ID: p.ID, FollowUpPlan: p.FollowUpPlan, Questions: p.Questions, ActionItems: p.ActionItems}
}

// samePlanFields reports whether actionPlanToProto gives the same answer
// for a and b because every field it reads is equal.
// TestSamePlanFieldsSeesEveryChange fails when the conversion reads a
// field this does not compare.
func samePlanFields(a, b store.Patient) bool {
	return a.ID == b.ID && a.FollowUpPlan == b.FollowUpPlan && a.Questions == b.Questions &&
		slices.EqualFunc(a.ActionItems, b.ActionItems, sameActionItem)
}

func sameActionItem(a, b store.ActionItem) bool {
	return a.ID == b.ID && a.WhatWeTalkedAbout == b.WhatWeTalkedAbout && a.WhatINeedToDo == b.WhatINeedToDo &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version &&
		slices.EqualFunc(a.Progress, b.Progress, func(x, y store.Progress) bool {
			return x.WhatIDid == y.WhatIDid && x.DoneOn == y.DoneOn && x.RecordedBy == y.RecordedBy && x.RecordedAt.Equal(y.RecordedAt)
		})
}
