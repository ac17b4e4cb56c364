package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

var _ store.Reminders = (*Store)(nil)

// ReminderShards is the number of due-time index shards. It is part of the
// key layout: every instance sharing a Redis must use the same number, so it
// is a constant rather than an option.
//
// Layout (see also the package comment):
//
//	mtm:{rq:<n>}            sorted set: Reminder.Key (packed, see packMember) scored
//	                        by due time (unix ms); a claimed key is scored by its
//	                        lease deadline
//	mtm:{rq:<n>}:lease      hash: packed key → due time (ms) before its first lease,
//	                        for each claimed key not yet settled or rescheduled: a
//	                        claim that finds an entry is a takeover (Reclaimed)
//	mtm:{rq:<n>}:sent       sorted set: keys (packed) acknowledged as sent, scored by
//	                        the end of their dedupe window
//	mtm:{rq:<n>}:n:<patient> sorted set: notification history, Reminder.Key scored
//	                        by sent time (ms); in the shard's slot so that one script
//	                        settles a batch (SettleReminders)
//	mtm:{p:<patient>}:doses hash: occurrence id → dose confirmation (CBOR)
//	mtm:{p:<patient>}:dosex sorted set: occurrence ids by occurrence time, for trimming
//
// A scheduled reminder costs one sorted-set member of about 40 bytes (the
// packed key of about 60 characters) and its score.
const ReminderShards = 16

func (k keys) reminderShard(n int) string { return k.tag("rq", strconv.Itoa(n)) }
func (k keys) reminderSent(n int) string  { return k.tag("rq", strconv.Itoa(n)) + ":sent" }
func (k keys) reminderLease(n int) string { return k.tag("rq", strconv.Itoa(n)) + ":lease" }
func (k keys) notifications(shard int, pid string) string {
	return k.tag("rq", strconv.Itoa(shard)) + ":n:" + pid
}
func (k keys) doses(pid string) string     { return k.tag("p", pid) + ":doses" }
func (k keys) doseIndex(pid string) string { return k.tag("p", pid) + ":dosex" }

// Reminder scripts. All are naturally idempotent or harmless when re-run
// after a lost reply (a re-run claim leases items nobody holds; they come
// back when the lease ends).
var (
	// KEYS[1] due set, KEYS[2] sent set, KEYS[3] lease hash; ARGV[1] now
	// ms, ARGV[2] lease deadline ms, ARGV[3] limit. Returns {key, due,
	// reclaimed (0/1), ...}: due is the score before the first lease.
	claimScript = redis.NewScript(`
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local out = {}
local now = tonumber(ARGV[1])
for i = 1, #items, 2 do
  local m = items[i]
  local exp = redis.call('ZSCORE', KEYS[2], m)
  if exp and tonumber(exp) > now then
    redis.call('ZREM', KEYS[1], m)
    redis.call('HDEL', KEYS[3], m)
  else
    redis.call('ZADD', KEYS[1], ARGV[2], m)
    local due = redis.call('HGET', KEYS[3], m)
    local again = 1
    if not due then
      due = items[i + 1]
      again = 0
      redis.call('HSET', KEYS[3], m, due)
    end
    out[#out + 1] = m
    out[#out + 1] = due
    out[#out + 1] = tostring(again)
  end
end
return out`)
	// KEYS[1] due set, KEYS[2] lease hash; ARGV[1] now ms, ARGV[2] new
	// lease deadline ms, then the keys. Returns how many were extended.
	renewScript = redis.NewScript(`
local now, deadline, n = tonumber(ARGV[1]), tonumber(ARGV[2]), 0
for i = 3, #ARGV do
  local m = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], m)
  if score and tonumber(score) > now and redis.call('HEXISTS', KEYS[2], m) == 1 then
    if tonumber(score) < deadline then redis.call('ZADD', KEYS[1], deadline, m) end
    n = n + 1
  end
end
return n`)
	// KEYS[1] due set, KEYS[2] sent set, KEYS[3] lease hash; ARGV[1] now
	// ms, ARGV[2] dedupe expiry ms, ARGV[3] number of done keys, then the
	// done keys, then (due ms, key) pairs to add.
	ackScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local n = tonumber(ARGV[3])
for i = 4, 3 + n do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i])
end
for i = 4 + n, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HDEL', KEYS[3], ARGV[i + 1])
end
return n`)
	// KEYS[1] due set, KEYS[2] sent set, KEYS[3] lease hash, KEYS[4...]
	// histories; ARGV[1]
	// now ms, ARGV[2] dedupe expiry ms, ARGV[3] history keep, ARGV[4]
	// number of done keys, then the done keys, then the number of next
	// reminders, then their (due ms, key) pairs, then (history KEYS
	// index, sent ms, key) triples.
	settleScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local i = 5
local n = tonumber(ARGV[4])
for j = i, i + n - 1 do
  redis.call('ZREM', KEYS[1], ARGV[j])
  redis.call('HDEL', KEYS[3], ARGV[j])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[j])
end
i = i + n
n = tonumber(ARGV[i])
i = i + 1
for j = i, i + 2 * n - 1, 2 do
  redis.call('ZADD', KEYS[1], ARGV[j], ARGV[j + 1])
  redis.call('HDEL', KEYS[3], ARGV[j + 1])
end
i = i + 2 * n
for j = i, #ARGV, 3 do
  redis.call('ZADD', KEYS[tonumber(ARGV[j])], ARGV[j + 1], ARGV[j + 2])
end
local keep = -1 - tonumber(ARGV[3])
for k = 4, #KEYS do
  redis.call('ZREMRANGEBYRANK', KEYS[k], 0, keep)
end
return 0`)
	// KEYS[1] due set, KEYS[2] lease hash; ARGV[1] number of keys to
	// cancel, then those keys, then (due ms, key) pairs to add.
	scheduleScript = redis.NewScript(`
local n = tonumber(ARGV[1])
for i = 2, 1 + n do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
for i = 2 + n, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HDEL', KEYS[2], ARGV[i + 1])
end
return n`)
	// KEYS[1] history; ARGV[1] sent ms, ARGV[2] key, ARGV[3] keep.
	noteScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
return over`)
	// KEYS[1] doses hash, KEYS[2] dose index, KEYS[3] the patient's data
	// key; ARGV[1] occurrence id, ARGV[2] record, ARGV[3] occurrence ms,
	// ARGV[4] keep, ARGV[5] the wrapped key the record is sealed under
	// ('' when unsealed): -1 without writing when the stored key is
	// another (Reencrypt replaced it).
	doseScript = redis.NewScript(`
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
if over < 0 then over = 0 end
return over`)
)

// ReminderShards returns the package constant ReminderShards.
func (s *Store) ReminderShards() int { return ReminderShards }

// ReminderShard hashes the patient id (FNV-1a) onto a shard.
func (s *Store) ReminderShard(patientID string) int {
	h := fnv.New32a()
	h.Write([]byte(patientID))
	return int(h.Sum32() % ReminderShards)
}

// ScheduleReminders removes cancel and adds add in one script on the
// patient's shard.
func (s *Store) ScheduleReminders(ctx context.Context, patientID string, add, cancel []store.Reminder) error {
	const opName = "redisstore.ScheduleReminders"
	argv := make([]any, 0, 1+len(cancel)+2*len(add))
	argv = append(argv, len(cancel))
	for _, r := range cancel {
		if r.PatientID != patientID {
			return fmt.Errorf("%s: reminder of another patient", opName)
		}
		argv = append(argv, packMember(r.Key()))
	}
	for _, r := range add {
		if r.PatientID != patientID {
			return fmt.Errorf("%s: reminder of another patient", opName)
		}
		argv = append(argv, r.DueAt.UnixMilli(), packMember(r.Key()))
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	sh := s.ReminderShard(patientID)
	ctx, cancelCtx := s.call(ctx)
	defer cancelCtx()
	if err := s.eval(ctx, scheduleScript, []string{s.k.reminderShard(sh), s.k.reminderLease(sh)}, argv...).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// ClaimDueReminders leases up to limit due reminders of one shard in one
// script.
func (s *Store) ClaimDueReminders(ctx context.Context, shard int, now time.Time, lease time.Duration, limit int) ([]store.Reminder, error) {
	const opName = "redisstore.ClaimDueReminders"
	if shard < 0 || shard >= ReminderShards {
		return nil, fmt.Errorf("%s: no shard %d", opName, shard)
	}
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.eval(ctx, claimScript, []string{s.k.reminderShard(shard), s.k.reminderSent(shard), s.k.reminderLease(shard)},
		now.UnixMilli(), now.Add(lease).UnixMilli(), limit).StringSlice()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	out := make([]store.Reminder, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		r, err := store.ParseReminderKey(unpackMember(res[i]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		ms, err := strconv.ParseFloat(res[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: score %q: %w", opName, res[i+1], err)
		}
		r.DueAt = time.UnixMilli(int64(ms)).UTC()
		r.Reclaimed = res[i+2] == "1"
		out = append(out, r)
	}
	return out, nil
}

// RenewReminderLeases extends the leases of rs that are still leased, in
// one script on the shard.
func (s *Store) RenewReminderLeases(ctx context.Context, shard int, rs []store.Reminder, now time.Time, lease time.Duration) (int, error) {
	const opName = "redisstore.RenewReminderLeases"
	if shard < 0 || shard >= ReminderShards {
		return 0, fmt.Errorf("%s: no shard %d", opName, shard)
	}
	if len(rs) == 0 {
		return 0, nil
	}
	argv := make([]any, 0, 2+len(rs))
	argv = append(argv, now.UnixMilli(), now.Add(lease).UnixMilli())
	for _, r := range rs {
		if s.ReminderShard(r.PatientID) != shard {
			return 0, fmt.Errorf("%s: reminder of shard %d renewed on shard %d", opName, s.ReminderShard(r.PatientID), shard)
		}
		argv = append(argv, packMember(r.Key()))
	}
	if err := ctx.Err(); err != nil {
		return 0, s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := s.eval(ctx, renewScript, []string{s.k.reminderShard(shard), s.k.reminderLease(shard)}, argv...).Int()
	if err != nil {
		return 0, s.fail(opName, err)
	}
	return n, nil
}

// AckReminders removes done (remembered as sent until now+dedupeWindow) and
// adds next, in one script on the shard.
func (s *Store) AckReminders(ctx context.Context, shard int, done, next []store.Reminder, now time.Time, dedupeWindow time.Duration) error {
	const opName = "redisstore.AckReminders"
	if shard < 0 || shard >= ReminderShards {
		return fmt.Errorf("%s: no shard %d", opName, shard)
	}
	if len(done) == 0 && len(next) == 0 {
		return nil
	}
	argv := make([]any, 0, 3+len(done)+2*len(next))
	argv = append(argv, now.UnixMilli(), now.Add(dedupeWindow).UnixMilli(), len(done))
	for _, r := range done {
		argv = append(argv, packMember(r.Key()))
	}
	for _, r := range next {
		if s.ReminderShard(r.PatientID) != shard {
			return fmt.Errorf("%s: reminder of shard %d acknowledged on shard %d", opName, s.ReminderShard(r.PatientID), shard)
		}
		argv = append(argv, r.DueAt.UnixMilli(), packMember(r.Key()))
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.eval(ctx, ackScript, []string{s.k.reminderShard(shard), s.k.reminderSent(shard), s.k.reminderLease(shard)}, argv...).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// SettleReminders appends the batch's history and acknowledges it in one
// script on the shard's slot (the histories of its patients live there).
func (s *Store) SettleReminders(ctx context.Context, shard int, st store.Settlement) error {
	const opName = "redisstore.SettleReminders"
	if shard < 0 || shard >= ReminderShards {
		return fmt.Errorf("%s: no shard %d", opName, shard)
	}
	if len(st.Sent) > 0 && st.HistoryKeep <= 0 {
		return fmt.Errorf("%s: keep must be positive, got %d", opName, st.HistoryKeep)
	}
	if len(st.Done) == 0 && len(st.Next) == 0 && len(st.Sent) == 0 {
		return nil
	}
	keys := []string{s.k.reminderShard(shard), s.k.reminderSent(shard), s.k.reminderLease(shard)}
	argv := make([]any, 0, 5+len(st.Done)+2*len(st.Next)+3*len(st.Sent))
	argv = append(argv, st.Now.UnixMilli(), st.Now.Add(st.DedupeWindow).UnixMilli(), st.HistoryKeep, len(st.Done))
	for _, r := range st.Done {
		argv = append(argv, packMember(r.Key()))
	}
	argv = append(argv, len(st.Next))
	for _, r := range st.Next {
		if s.ReminderShard(r.PatientID) != shard {
			return fmt.Errorf("%s: reminder of shard %d acknowledged on shard %d", opName, s.ReminderShard(r.PatientID), shard)
		}
		argv = append(argv, r.DueAt.UnixMilli(), packMember(r.Key()))
	}
	hist := map[string]int{} // patient → KEYS index (1-based)
	for _, n := range st.Sent {
		if s.ReminderShard(n.PatientID) != shard {
			return fmt.Errorf("%s: notification of shard %d settled on shard %d", opName, s.ReminderShard(n.PatientID), shard)
		}
		ki, ok := hist[n.PatientID]
		if !ok {
			keys = append(keys, s.k.notifications(shard, n.PatientID))
			ki = len(keys)
			hist[n.PatientID] = ki
		}
		argv = append(argv, ki, n.SentAt.UnixMilli(), n.Key)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.eval(ctx, settleScript, keys, argv...).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// AppendNotifications adds each notification to its patient's history in
// one pipeline (one script per notification, each on the patient's slot;
// EVALSHA first, EVAL for the whole batch when a node lacks the script).
func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification, keep int) error {
	const opName = "redisstore.AppendNotifications"
	if keep <= 0 {
		return fmt.Errorf("%s: keep must be positive, got %d", opName, keep)
	}
	if len(ns) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	for _, n := range ns {
		noteScript.EvalSha(ctx, pipe, []string{s.k.notifications(s.ReminderShard(n.PatientID), n.PatientID)}, n.SentAt.UnixMilli(), n.Key, keep)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil && hasNoScript(cmds) {
		pipe = s.rdb.Pipeline()
		for _, n := range ns {
			noteScript.Eval(ctx, pipe, []string{s.k.notifications(s.ReminderShard(n.PatientID), n.PatientID)}, n.SentAt.UnixMilli(), n.Key, keep)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		return s.fail(opName, err)
	}
	return nil
}

func hasNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// ListNotifications returns up to limit of the patient's history, newest first.
func (s *Store) ListNotifications(ctx context.Context, patientID string, limit int) ([]store.Notification, error) {
	const opName = "redisstore.ListNotifications"
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	zs, err := s.rdb.ZRevRangeWithScores(ctx, s.k.notifications(s.ReminderShard(patientID), patientID), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	out := make([]store.Notification, 0, len(zs))
	for _, z := range zs {
		key, _ := z.Member.(string)
		r, err := store.ParseReminderKey(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		out = append(out, store.Notification{PatientID: patientID, Key: key, OccurrenceID: r.OccurrenceID(), Kind: r.Kind,
			SentAt: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return out, nil
}

// doseWire is the stored form of a DoseRecord.
type doseWire struct {
	OccurrenceID string `cbor:"1,keyasint"`
	Occurrence   int64  `cbor:"2,keyasint"`
	Outcome      string `cbor:"3,keyasint"`
	SnoozedUntil int64  `cbor:"4,keyasint,omitempty"`
	RecordedBy   string `cbor:"5,keyasint"`
	RecordedAt   int64  `cbor:"6,keyasint"`
}

// RecordDose stores the confirmation and trims the oldest occurrences
// beyond keep, in one script on the patient's slot.
func (s *Store) RecordDose(ctx context.Context, d store.DoseRecord, keep int) error {
	const opName = "redisstore.RecordDose"
	if keep <= 0 {
		return fmt.Errorf("%s: keep must be positive, got %d", opName, keep)
	}
	if d.PatientID == "" || d.OccurrenceID == "" {
		return fmt.Errorf("%s: empty patient or occurrence id", opName)
	}
	rec, err := s.encode(doseWire{OccurrenceID: d.OccurrenceID, Occurrence: tEnc(d.Occurrence), Outcome: string(d.Outcome),
		SnoozedUntil: tEnc(d.SnoozedUntil), RecordedBy: d.RecordedBy, RecordedAt: tEnc(d.RecordedAt)})
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	for range s.opts.MaxUpdateAttempts {
		dk, wrapped, err := s.appendKey(ctx, d.PatientID)
		if err != nil {
			return s.fail(opName, err)
		}
		sealed, err := sealRecord(dk, kindDose, d.OccurrenceID, rec)
		if err != nil {
			return fmt.Errorf("%s: %w", opName, err)
		}
		cctx, cancel := s.call(ctx)
		n, err := s.eval(cctx, doseScript, []string{s.k.doses(d.PatientID), s.k.doseIndex(d.PatientID), s.k.patientKey(d.PatientID)},
			d.OccurrenceID, sealed, d.Occurrence.UnixMilli(), keep, wrapped).Int()
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			return s.fail(opName, err)
		}
		if n >= 0 {
			return nil
		}
		s.wrapped.drop(d.PatientID) // the key changed: read it again
	}
	return fmt.Errorf("%s: the patient's data key keeps changing: %w", opName, store.ErrConflict)
}

// GetDose returns the confirmation of an occurrence or store.ErrNotFound.
func (s *Store) GetDose(ctx context.Context, patientID, occurrenceID string) (store.DoseRecord, error) {
	var out0 store.DoseRecord
	err := retrySealed(func() error {
		var err error
		out0, err = s.getDoseOnce(ctx, patientID, occurrenceID)
		return err
	})
	return out0, err
}

// getDoseOnce is one attempt of GetDose.
func (s *Store) getDoseOnce(ctx context.Context, patientID, occurrenceID string) (store.DoseRecord, error) {
	const opName = "redisstore.GetDose"
	if err := ctx.Err(); err != nil {
		return store.DoseRecord{}, s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	rawCmd := pipe.HGet(ctx, s.k.doses(patientID), occurrenceID)
	keyCmd := pipe.Get(ctx, s.k.patientKey(patientID))
	_, _ = pipe.Exec(ctx)
	raw, err := rawCmd.Bytes()
	if err != nil {
		return store.DoseRecord{}, s.fail(opName, err)
	}
	dk, err := s.pipedKey(patientID, keyCmd)
	if err != nil {
		return store.DoseRecord{}, s.fail(opName, err)
	}
	var w doseWire
	if err := s.decodeDose(dk, occurrenceID, raw, &w); err != nil {
		return store.DoseRecord{}, fmt.Errorf("%s: %w", opName, err)
	}
	return store.DoseRecord{PatientID: patientID, OccurrenceID: w.OccurrenceID, Occurrence: tDec(w.Occurrence),
		Outcome: store.DoseOutcome(w.Outcome), SnoozedUntil: tDec(w.SnoozedUntil), RecordedBy: w.RecordedBy, RecordedAt: tDec(w.RecordedAt)}, nil
}

// LoadReminderContext reads the patients of rs and their dose
// confirmations in one pipeline (GET and HGET on each patient's slot).
func (s *Store) LoadReminderContext(ctx context.Context, rs []store.Reminder) (store.ReminderContext, error) {
	var out0 store.ReminderContext
	err := retrySealed(func() error {
		var err error
		out0, err = s.loadReminderContextOnce(ctx, rs)
		return err
	})
	return out0, err
}

// loadReminderContextOnce is one attempt of LoadReminderContext.
func (s *Store) loadReminderContextOnce(ctx context.Context, rs []store.Reminder) (store.ReminderContext, error) {
	const opName = "redisstore.LoadReminderContext"
	out := store.ReminderContext{Patients: map[string]store.Patient{}, Doses: map[string]store.DoseRecord{}}
	if len(rs) == 0 {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return out, s.fail(opName, err)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	patients := map[string]*redis.StringCmd{}
	keys := map[string]*redis.StringCmd{}
	type doseCmd struct {
		patient, occ string
		cmd          *redis.StringCmd
	}
	var doses []doseCmd
	seen := map[string]bool{}
	for _, r := range rs {
		if _, ok := patients[r.PatientID]; !ok {
			patients[r.PatientID] = pipe.Get(ctx, s.k.patient(r.PatientID))
			keys[r.PatientID] = pipe.Get(ctx, s.k.patientKey(r.PatientID))
		}
		if r.Kind != store.ReminderDose && r.Kind != store.ReminderMissedDose {
			continue
		}
		occ := r.DoseOccurrenceID()
		if k := store.DoseKey(r.PatientID, occ); !seen[k] {
			seen[k] = true
			doses = append(doses, doseCmd{r.PatientID, occ, pipe.HGet(ctx, s.k.doses(r.PatientID), occ)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return store.ReminderContext{}, s.fail(opName, err)
	}
	dks := make(map[string]*seal.DataKey, len(keys))
	for id, cmd := range keys {
		dk, err := s.pipedKey(id, cmd)
		if err != nil {
			return store.ReminderContext{}, s.fail(opName, err)
		}
		dks[id] = dk
	}
	for id, cmd := range patients {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return store.ReminderContext{}, s.fail(opName, err)
		}
		p, err := s.decodeReminderPatient(dks[id], id, b)
		if err != nil {
			return store.ReminderContext{}, fmt.Errorf("%s: patient %s: %w", opName, id, err)
		}
		out.Patients[id] = p
	}
	for _, d := range doses {
		b, err := d.cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return store.ReminderContext{}, s.fail(opName, err)
		}
		var w doseWire
		if err := s.decodeDose(dks[d.patient], d.occ, b, &w); err != nil {
			return store.ReminderContext{}, fmt.Errorf("%s: %w", opName, err)
		}
		out.Doses[store.DoseKey(d.patient, d.occ)] = store.DoseRecord{PatientID: d.patient, OccurrenceID: w.OccurrenceID, Occurrence: tDec(w.Occurrence),
			Outcome: store.DoseOutcome(w.Outcome), SnoozedUntil: tDec(w.SnoozedUntil), RecordedBy: w.RecordedBy, RecordedAt: tDec(w.RecordedAt)}
	}
	return out, nil
}

// reminderPatientWire is the part of patientWire (same CBOR keys) that
// reminders read: decoding skips the rest of the record (allergies,
// action items, reviews, self-reports, medication histories, free text).
type reminderPatientWire struct {
	ID                string                   `cbor:"1,keyasint,omitempty"`
	PharmacyID        string                   `cbor:"2,keyasint,omitempty"`
	TimeZone          string                   `cbor:"6,keyasint,omitempty"`
	QuietStart        int                      `cbor:"7,keyasint,omitempty"`
	QuietEnd          int                      `cbor:"8,keyasint,omitempty"`
	PushNamesMedicine bool                     `cbor:"9,keyasint,omitempty"`
	Medications       []reminderMedicationWire `cbor:"10,keyasint,omitempty"`
	Fills             []fillWire               `cbor:"13,keyasint,omitempty"`
	Grants            []grantWire              `cbor:"20,keyasint,omitempty"`
	Devices           []deviceWire             `cbor:"21,keyasint,omitempty"`
	DoseSchedules     []scheduleWire           `cbor:"22,keyasint,omitempty"`
	FollowUps         []followUpWire           `cbor:"23,keyasint,omitempty"`
	PreferredLanguage string                   `cbor:"26,keyasint,omitempty"` // the push texts' language
}

// reminderMedicationWire is the part of medicationWire reminders read.
type reminderMedicationWire struct {
	ID        string `cbor:"1,keyasint,omitempty"`
	Name      string `cbor:"2,keyasint,omitempty"`
	Strength  string `cbor:"3,keyasint,omitempty"`
	StartedOn int64  `cbor:"8,keyasint,omitempty"`
	StoppedOn int64  `cbor:"9,keyasint,omitempty"`
	Version   int64  `cbor:"13,keyasint,omitempty"`
}

// decodeReminderPatient decodes the reminder view of a stored patient (see
// store.Reminders.LoadReminderContext).
func (s *Store) decodeReminderPatient(dk *seal.DataKey, id string, b []byte) (store.Patient, error) {
	b, err := openVersioned(dk, kindPatient, id, versionedHeaderLen, b)
	if err != nil {
		return store.Patient{}, err
	}
	var w reminderPatientWire
	version, err := s.decodeVersioned(b, &w)
	if err != nil {
		return store.Patient{}, err
	}
	return store.Patient{
		ID: w.ID, PharmacyID: w.PharmacyID, TimeZone: w.TimeZone, Version: version,
		QuietHours:        store.QuietHours{StartMinute: w.QuietStart, EndMinute: w.QuietEnd},
		PushNamesMedicine: w.PushNamesMedicine, PreferredLanguage: w.PreferredLanguage,
		Medications: mapSlice(w.Medications, func(m reminderMedicationWire) store.Medication {
			return store.Medication{ID: m.ID, Name: m.Name, Strength: m.Strength, StartedOn: dDec(m.StartedOn), StoppedOn: dDec(m.StoppedOn), Version: m.Version}
		}),
		Fills: mapSlice(w.Fills, func(f fillWire) store.Fill {
			return store.Fill{ID: f.ID, MedicationID: f.MedicationID, FilledOn: dDec(f.FilledOn), DaysSupply: f.DaysSupply, RecordedAt: tDec(f.RecordedAt)}
		}),
		Grants:        mapSlice(w.Grants, grantWire.toStore),
		Devices:       mapSlice(w.Devices, deviceWire.toStore),
		DoseSchedules: mapSlice(w.DoseSchedules, scheduleWire.toStore),
		FollowUps:     mapSlice(w.FollowUps, followUpWire.toStore),
	}, nil
}

// decodeDose reads a stored dose confirmation, sealed or not.
func (s *Store) decodeDose(dk *seal.DataKey, occurrenceID string, b []byte, w *doseWire) error {
	rec, err := openRecord(dk, kindDose, occurrenceID, b)
	if err != nil {
		return err
	}
	return s.decode(rec, w)
}
