package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.ChangeLog = (*Store)(nil)

// Each patient's change log lives in the patient's slot, so the script
// that writes the record writes its log entries too (Cluster-safe):
//
//	mtm:{p:<patient>}:changes  sorted set, score Seq, member "<seq>\n<kind>\n<item>\n<removed 0|1>\n<unix ms>"
//	mtm:{p:<patient>}:parts    hash: head, oldest, k:<kind> -> Seq of the kind's latest change
//
// Thread changes are logged by a second step after the thread is written
// (the thread lives in its own slot), as the inbox feed is.
func (k keys) patientChanges(id string) string { return k.tag("p", id) + ":changes" }
func (k keys) patientParts(id string) string   { return k.tag("p", id) + ":parts" }

// logChangesLua appends the changes in ARGV[first..] (kind, item, removed,
// at; four arguments each) to the log in KEYS[changes] and the head in
// KEYS[parts], keeping the newest ARGV[keep] entries.
const logChangesLua = `
local function logChanges(changes, parts, keep, first)
  local head = 0
  for i = first, #ARGV, 4 do
    head = redis.call('HINCRBY', parts, 'head', 1)
    redis.call('ZADD', changes, head, head .. '\n' .. ARGV[i] .. '\n' .. ARGV[i+1] .. '\n' .. ARGV[i+2] .. '\n' .. ARGV[i+3])
    redis.call('HSET', parts, 'k:' .. ARGV[i], head)
  end
  if head == 0 then return end
  redis.call('ZREMRANGEBYSCORE', changes, '-inf', head - tonumber(keep))
  local oldest = redis.call('ZRANGE', changes, 0, 0, 'WITHSCORES')
  redis.call('HSET', parts, 'oldest', oldest[2])
end
`

// changeScripts write the record and its log entries in one step, and
// read the record with its log head, the head alone, or the head with
// log entries, each in one step.
type changeScripts struct {
	casPatient, logChanges, readWithParts, readParts, readChanges *redis.Script
}

func newChangeScripts() changeScripts {
	return changeScripts{
		// KEYS[2] patient, KEYS[3] changes, KEYS[4] parts. ARGV[2]
		// expected header, ARGV[3] new record, ARGV[4] keep, ARGV[5..]
		// changes.
		casPatient: redis.NewScript(idempotent + logChangesLua + `
local cur = redis.call('GETRANGE', KEYS[2], 0, string.len(ARGV[2]) - 1)
if cur == '' then return finish('NOTFOUND') end
if cur ~= ARGV[2] then return finish('CONFLICT') end
redis.call('SET', KEYS[2], ARGV[3])
logChanges(KEYS[3], KEYS[4], ARGV[4], 5)
return finish('OK')`),
		// Not idempotent and need not be: a re-run logs the thread
		// twice, which a reader takes as one change. KEYS[1] changes,
		// KEYS[2] parts; ARGV[1] keep, ARGV[2..] changes.
		logChanges: redis.NewScript(logChangesLua + `
logChanges(KEYS[1], KEYS[2], ARGV[1], 2)
return 1`),
		// Reads only. KEYS[1] patient, KEYS[2] their wrapped data key,
		// KEYS[3] parts: {record or nil, key or nil, {field, value, …}}.
		readWithParts: redis.NewScript(`
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('HGETALL', KEYS[3])}`),
		// Reads only. KEYS[1] patient, KEYS[2] parts: {1 if the record
		// exists else 0, {field, value, …}}.
		readParts: redis.NewScript(`
return {redis.call('EXISTS', KEYS[1]), redis.call('HGETALL', KEYS[2])}`),
		// Reads only. KEYS[1] patient, KEYS[2] parts, KEYS[3] changes;
		// ARGV[1] the lowest score ("(after"), ARGV[2] how many entries:
		// readParts's answer and {entry, …}.
		readChanges: redis.NewScript(`
return {redis.call('EXISTS', KEYS[1]), redis.call('HGETALL', KEYS[2]),
  redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '+inf', 'LIMIT', 0, ARGV[2])}`),
	}
}

// changeArgs flattens changes into the scripts' arguments.
func changeArgs(cs []store.Change) []any {
	out := make([]any, 0, 4*len(cs))
	for _, c := range cs {
		removed := "0"
		if c.Removed {
			removed = "1"
		}
		out = append(out, string(c.Kind), c.ItemID, removed, strconv.FormatInt(c.At.UnixMilli(), 10))
	}
	return out
}

// logThreadChange appends the thread's entry to its patient's log.
func (s *Store) logThreadChange(ctx context.Context, t store.Thread) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	args := append([]any{store.ChangeLogKeep}, changeArgs([]store.Change{store.ThreadChange(t, s.opts.Now())})...)
	return s.eval(ctx, s.scripts.changes.logChanges, []string{s.k.patientChanges(t.PatientID), s.k.patientParts(t.PatientID)}, args...).Err()
}

// PatientParts returns the head of the patient's change log with one
// round trip, without reading the record; store.ErrNotFound if there is no
// such patient.
func (s *Store) PatientParts(ctx context.Context, patientID string) (store.PartVersions, error) {
	const opName = "redisstore.PatientParts"
	if err := ctx.Err(); err != nil {
		return store.PartVersions{}, s.fail(opName, err)
	}
	// A script in the pipeline shared with concurrent calls (see
	// grouped): a busy instance reads many heads in one round trip.
	reply, err := s.grouped(ctx, s.scripts.changes.readParts,
		[]string{s.k.patient(patientID), s.k.patientParts(patientID)}).Slice()
	if err == nil && len(reply) != 2 {
		err = fmt.Errorf("readParts answered %d values, want 2", len(reply))
	}
	if err != nil {
		return store.PartVersions{}, s.fail(opName, err)
	}
	pv, err := partsReply(reply[0], reply[1])
	if err != nil {
		return store.PartVersions{}, fmt.Errorf("%s: %w", opName, err)
	}
	return pv, nil
}

// partsReply reads the first two values of readParts and readChanges:
// store.ErrNotFound when the record does not exist, else the head.
func partsReply(exists, fields any) (store.PartVersions, error) {
	if n, _ := exists.(int64); n == 0 {
		return store.PartVersions{}, store.ErrNotFound
	}
	return parsePartVersions(fieldMap(fields))
}

// fieldMap is an HGETALL answer given back by a script ({field, value,
// …}) as a map.
func fieldMap(v any) map[string]string {
	fields, _ := v.([]any)
	out := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		f, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		out[f] = v
	}
	return out
}

// PatientWithParts reads the record, its data key and the head of its
// change log in one MULTI (the keys share the patient's slot).
func (s *Store) PatientWithParts(ctx context.Context, patientID string) (store.Patient, store.PartVersions, error) {
	const opName = "redisstore.PatientWithParts"
	if err := ctx.Err(); err != nil {
		return store.Patient{}, store.PartVersions{}, s.fail(opName, err)
	}
	// One script, atomic, in a pipeline shared with concurrent calls
	// (scriptgroup.go): a busy instance reads many records in one round
	// trip.
	reply, err := s.grouped(ctx, s.scripts.changes.readWithParts,
		[]string{s.k.patient(patientID), s.k.patientKey(patientID), s.k.patientParts(patientID)}).Slice()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("readWithParts answered %d values, want 3", len(reply))
	}
	if err != nil {
		return store.Patient{}, store.PartVersions{}, s.fail(opName, err)
	}
	parts := fieldMap(reply[2])
	b, wrapped, err := patientReply(reply[:2])
	if err != nil {
		return store.Patient{}, store.PartVersions{}, s.fail(opName, err)
	}
	// Shared: the caller only reads (see store.ChangeLog).
	pt, err := s.patients.Shared(patientID, b, wrapped, s.opener(patientID, wrapped))
	if err != nil {
		return store.Patient{}, store.PartVersions{}, fmt.Errorf("%s: %w", opName, err)
	}
	pv, err := parsePartVersions(parts)
	if err != nil {
		return store.Patient{}, store.PartVersions{}, fmt.Errorf("%s: %w", opName, err)
	}
	return pt, pv, nil
}

// PatientChanges reads the head and up to limit entries after `after` in
// one script (the keys share the patient's slot), in the pipeline shared
// with concurrent calls (see grouped).
func (s *Store) PatientChanges(ctx context.Context, patientID string, after int64, limit int) ([]store.Change, store.PartVersions, error) {
	const opName = "redisstore.PatientChanges"
	if err := ctx.Err(); err != nil {
		return nil, store.PartVersions{}, s.fail(opName, err)
	}
	reply, err := s.grouped(ctx, s.scripts.changes.readChanges,
		[]string{s.k.patient(patientID), s.k.patientParts(patientID), s.k.patientChanges(patientID)},
		"("+strconv.FormatInt(after, 10), max(limit, 1)).Slice()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("readChanges answered %d values, want 3", len(reply))
	}
	if err != nil {
		return nil, store.PartVersions{}, s.fail(opName, err)
	}
	pv, err := partsReply(reply[0], reply[1])
	if err != nil {
		return nil, store.PartVersions{}, fmt.Errorf("%s: %w", opName, err)
	}
	if after < 0 || after > pv.Head || (pv.Oldest > 0 && after < pv.Oldest-1) {
		return nil, store.PartVersions{}, fmt.Errorf("%s: %w", opName, store.ErrChangesTrimmed)
	}
	if limit <= 0 {
		return nil, pv, nil
	}
	entries, _ := reply[2].([]any)
	out := make([]store.Change, 0, len(entries))
	for _, e := range entries {
		m, _ := e.(string)
		c, err := parseChange(m)
		if err != nil {
			return nil, store.PartVersions{}, fmt.Errorf("%s: %w", opName, err)
		}
		out = append(out, c)
	}
	return out, pv, nil
}

func parsePartVersions(h map[string]string) (store.PartVersions, error) {
	var pv store.PartVersions
	for f, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return store.PartVersions{}, fmt.Errorf("change log head field %q: %w", f, err)
		}
		switch {
		case f == "head":
			pv.Head = n
		case f == "oldest":
			pv.Oldest = n
		case strings.HasPrefix(f, "k:"):
			if pv.Kinds == nil {
				pv.Kinds = map[store.ChangeKind]int64{}
			}
			pv.Kinds[store.ChangeKind(f[2:])] = n
		}
	}
	return pv, nil
}

func parseChange(m string) (store.Change, error) {
	f := strings.Split(m, "\n")
	if len(f) != 5 {
		return store.Change{}, errors.New("malformed change log entry")
	}
	seq, err1 := strconv.ParseInt(f[0], 10, 64)
	at, err2 := strconv.ParseInt(f[4], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return store.Change{}, fmt.Errorf("malformed change log entry: %w", err)
	}
	return store.Change{Seq: seq, Kind: store.ChangeKind(f[1]), ItemID: f[2], Removed: f[3] == "1", At: time.UnixMilli(at).UTC()}, nil
}
