package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

var _ store.AuditTrail = (*Store)(nil)

// auditSep separates an event's id from its record inside a sorted-set
// member, so that members sort by event id.
const auditSep = "\x00"

// AppendAuditEvent appends ev to its patient's access or refusal window
// (two sorted sets under the patient's hash tag) and drops that window's
// oldest events (lowest ids) beyond keep, in one script. Re-sending the same event
// (a go-redis retry) stores it once.
func (s *Store) AppendAuditEvent(ctx context.Context, ev store.AuditEvent, keep int) error {
	const opName = "redisstore.AppendAuditEvent"
	if keep <= 0 {
		return fmt.Errorf("%s: keep must be positive, got %d", opName, keep)
	}
	rec, err := s.encode(auditWire{ID: ev.ID, Time: tEnc(ev.Time), ActorID: ev.ActorID, ActorRole: string(ev.ActorRole),
		ActorName: ev.ActorName, PatientID: ev.PatientID, Procedure: ev.Procedure, Object: ev.Object,
		Allowed: ev.Allowed, Outcome: string(ev.Outcome), Code: ev.Code, RequestID: ev.RequestID, ClientAddr: ev.ClientAddr, Reason: ev.Reason})
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	window := s.k.audit(ev.PatientID)
	if ev.EffectiveOutcome().Refusal() {
		window = s.k.auditRefused(ev.PatientID)
	}
	for range s.opts.MaxUpdateAttempts {
		dk, wrapped, err := s.appendKey(ctx, ev.PatientID)
		if err != nil {
			return s.fail(opName, err)
		}
		sealed, err := sealRecord(dk, kindAudit, ev.ID, rec)
		if err != nil {
			return fmt.Errorf("%s: %w", opName, err)
		}
		member := append([]byte(ev.ID+auditSep), sealed...)
		n, err := s.appendAuditOnce(ctx, []string{window, s.k.patientKey(ev.PatientID)}, member, keep, wrapped)
		if err != nil {
			return s.fail(opName, err)
		}
		if n >= 0 {
			return nil
		}
		s.wrapped.drop(ev.PatientID) // the key changed: read it again
	}
	return fmt.Errorf("%s: the patient's data key keeps changing: %w", opName, store.ErrConflict)
}

// appendAuditOnce runs the appendAudit script once (see eval: in a
// pipeline shared with concurrent calls, or alone when every write waits
// for replica acknowledgements).
func (s *Store) appendAuditOnce(ctx context.Context, keys []string, args ...any) (int, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.eval(cctx, s.scripts.appendAudit, keys, args...).Int()
}

// ListAuditEvents returns up to limit of the patient's events from both
// windows, newest first, with ids strictly less than before ("" for the
// newest).
func (s *Store) ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]store.AuditEvent, error) {
	var out0 []store.AuditEvent
	err := retrySealed(func() error {
		var err error
		out0, err = s.listAuditEventsOnce(ctx, patientID, before, limit)
		return err
	})
	return out0, err
}

// listAuditEventsOnce is one attempt of ListAuditEvents.
func (s *Store) listAuditEventsOnce(ctx context.Context, patientID, before string, limit int) ([]store.AuditEvent, error) {
	const opName = "redisstore.ListAuditEvents"
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	// A member "<id>\x00..." is below "<before>" exactly when id < before.
	hi := "+"
	if before != "" {
		hi = "(" + before
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	by := &redis.ZRangeBy{Min: "-", Max: hi, Count: int64(limit)}
	// Both windows share the patient's hash tag: one slot, one round trip.
	pipe := s.rdb.Pipeline()
	accessCmd := pipe.ZRevRangeByLex(ctx, s.k.audit(patientID), by)
	refusalCmd := pipe.ZRevRangeByLex(ctx, s.k.auditRefused(patientID), by)
	keyCmd := pipe.Get(ctx, s.k.patientKey(patientID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail(opName, err)
	}
	dk, err := s.pipedKey(patientID, keyCmd)
	if err != nil {
		return nil, s.fail(opName, err)
	}
	accesses, err := s.decodeAuditMembers(dk, accessCmd.Val())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opName, err)
	}
	refusals, err := s.decodeAuditMembers(dk, refusalCmd.Val())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opName, err)
	}
	return mergeNewestFirst(accesses, refusals, limit), nil
}

func (s *Store) decodeAuditMembers(dk *seal.DataKey, members []string) ([]store.AuditEvent, error) {
	out := make([]store.AuditEvent, 0, len(members))
	for _, m := range members {
		i := strings.IndexByte(m, 0)
		if i < 0 {
			return nil, errFormat
		}
		rec, err := openRecord(dk, kindAudit, m[:i], []byte(m[i+1:]))
		if err != nil {
			return nil, err
		}
		var w auditWire
		if err := s.decode(rec, &w); err != nil {
			return nil, err
		}
		out = append(out, store.AuditEvent{ID: w.ID, Time: tDec(w.Time), ActorID: w.ActorID, ActorRole: store.Role(w.ActorRole),
			ActorName: w.ActorName, PatientID: w.PatientID, Procedure: w.Procedure, Object: w.Object,
			Allowed: w.Allowed, Outcome: store.AuditOutcome(w.Outcome), Code: w.Code, RequestID: w.RequestID, ClientAddr: w.ClientAddr, Reason: w.Reason})
	}
	return out, nil
}

// mergeNewestFirst merges two lists sorted by descending ID into the first
// limit events of both.
func mergeNewestFirst(a, b []store.AuditEvent, limit int) []store.AuditEvent {
	out := make([]store.AuditEvent, 0, min(limit, len(a)+len(b)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].ID > b[0].ID) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
