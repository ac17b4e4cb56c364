package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// Reencrypt (store.AtRest) on Redis.
//
// Patients are visited in id order across pharmacies by merging the
// pharmacies' patient indexes (mtm:{ph:*}:patients, found with SCAN on
// every primary); the cursor is "p:<last patient id>". Once the patients
// are done the same call runs the directory phase (cursor "d:" resumes
// it): accounts not sealed yet are sealed, and e-mail claims, activation
// codes and invites still under clear keys move to their blind keys.
//
// For each patient: with RotateDataKeys a new key version is added to the
// data key (a swap of the wrapped key that expects the one read); every
// value not sealed under the primary version is resealed by a script that
// expects what was read (records by their compare-and-set header, which
// names the key version that sealed them, so the record version stays;
// set members and hash fields by their bytes); then the versions nothing
// uses are retired. Live writers cannot leave a value under a retired
// version: record writes expect the header they read (which the reseal
// changed), and audit and dose appends check the stored wrapped key in
// their script.
//
// An AOF keeps the history of every write: values written before sealing
// (or under a retired key version) stay in the file until Redis rewrites
// it. A migration therefore runs a whole Reencrypt pass and then
// BGREWRITEAOF on every primary (and replica) — see RewriteAOF.

const (
	cursorPatients  = "p:"
	cursorDirectory = "d:"
)

var errBadCursor = errors.New("unknown re-encryption cursor")

// Reencrypt implements store.AtRest.
func (s *Store) Reencrypt(ctx context.Context, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, error) {
	const opName = "redisstore.Reencrypt"
	limit := opts.Limit
	if limit <= 0 {
		limit = 100
	}
	var page store.ReencryptPage
	if cursor == "" || strings.HasPrefix(cursor, cursorPatients) {
		ids, err := s.nextPatientIDs(ctx, strings.TrimPrefix(cursor, cursorPatients), limit)
		if err != nil {
			return store.ReencryptPage{}, s.fail(opName, err)
		}
		for _, id := range ids {
			resealed, retired, err := s.reencryptPatient(ctx, id, opts.RotateDataKeys)
			if err != nil {
				return page, s.fail(opName, fmt.Errorf("patient %s: %w", id, err))
			}
			page.Patients++
			page.Resealed += resealed
			page.Retired += retired
		}
		if len(ids) == limit {
			page.Next = cursorPatients + ids[len(ids)-1]
			return page, nil
		}
		cursor = cursorDirectory
	}
	if cursor != cursorDirectory {
		return store.ReencryptPage{}, fmt.Errorf("%s: %w %q", opName, errBadCursor, cursor)
	}
	n, err := s.reencryptDirectory(ctx)
	page.Resealed += n
	if err != nil {
		page.Next = cursorDirectory
		return page, s.fail(opName, err)
	}
	return page, nil
}

// forEachPrimary runs fn on every primary (the one node, or each Cluster
// primary).
func (s *Store) forEachPrimary(ctx context.Context, fn func(context.Context, *redis.Client) error) error {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("client %T: cannot reach its primaries", s.rdb)
	}
}

// scanKeys returns every key matching pattern on every primary.
func (s *Store) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var mu = make(chan struct{}, 1)
	var out []string
	err := s.forEachPrimary(ctx, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var mine []string
		for iter.Next(ctx) {
			mine = append(mine, iter.Val())
		}
		mu <- struct{}{}
		out = append(out, mine...)
		<-mu
		return iter.Err()
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

// nextPatientIDs returns up to limit patient ids above after, in id
// order, from every pharmacy's index.
func (s *Store) nextPatientIDs(ctx context.Context, after string, limit int) ([]string, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	indexes, err := s.scanKeys(cctx, s.opts.Prefix+":{ph:*}:patients")
	if err != nil {
		return nil, err
	}
	lo := "-"
	if after != "" {
		lo = "(" + after
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(indexes))
	for i, key := range indexes {
		cmds[i] = pipe.ZRangeByLex(cctx, key, &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(limit)})
	}
	if len(indexes) > 0 {
		if _, err := pipe.Exec(cctx); err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.Val()...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// Entries without a record (a create that stopped half way, a
	// deleted patient) are skipped by reencryptPatient.
	return ids[:min(len(ids), limit)], nil
}

// reencryptPatient runs the pass over one patient (see the file comment).
func (s *Store) reencryptPatient(ctx context.Context, id string, rotate bool) (resealed, retired int, err error) {
	cctx, cancel := s.call(ctx)
	exists, err := s.rdb.Exists(cctx, s.k.patient(id)).Result()
	cancel()
	if err != nil || exists == 0 {
		return 0, 0, err
	}
	wrapped, err := s.ensurePatientKey(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	if rotate {
		next, err := s.vault.RotatePatientKey(id, wrapped)
		if err != nil {
			return 0, 0, err
		}
		if wrapped, err = s.swapKey(ctx, id, wrapped, next); err != nil {
			return 0, 0, err
		}
	}
	dk, err := s.dataKey(id, wrapped)
	if err != nil {
		return 0, 0, err
	}
	steps := []func(context.Context, string, *seal.DataKey) (int, error){
		s.resealPatientRecord, s.resealCode, s.resealAudit, s.resealDoses, s.resealThreads,
	}
	for _, step := range steps {
		n, err := step(ctx, id, dk)
		resealed += n
		if err != nil {
			return resealed, 0, err
		}
	}
	if dk.Versions() > 1 {
		// Threads and codes are created without checking the stored key:
		// one created meanwhile by a writer that read the key before the
		// rotation is sealed under the old version. Look again just
		// before retiring it (this narrows that window, see the README).
		for _, step := range []func(context.Context, string, *seal.DataKey) (int, error){s.resealCode, s.resealThreads} {
			n, err := step(ctx, id, dk)
			resealed += n
			if err != nil {
				return resealed, 0, err
			}
		}
		retired = dk.Versions() - 1
	}
	// Every value is current: drop the other versions and, in any case,
	// rewrap the key under the KEK's primary version (after a KEK
	// rotation the old KEK version can go once a pass completed).
	next, err := s.vault.RetirePatientKeys(id, wrapped)
	if err != nil {
		return resealed, 0, err
	}
	if _, err := s.swapKey(ctx, id, wrapped, next); err != nil {
		return resealed, 0, err
	}
	return resealed, retired, nil
}

// swapKey replaces the patient's wrapped key from by to; when another
// writer (a second Reencrypt) changed it first, it fails with
// store.ErrConflict.
func (s *Store) swapKey(ctx context.Context, id string, from, to []byte) ([]byte, error) {
	status, _, err := s.run(ctx, s.scripts.swap, s.k.patientKey(id), from, to)
	if err != nil {
		return nil, err
	}
	if status != stOK {
		return nil, fmt.Errorf("data key of patient %s changed meanwhile (another re-encryption?): %w", id, store.ErrConflict)
	}
	return to, nil
}

// current reports whether a stored value with a clear header of
// headerLen bytes is sealed under dk's primary version.
func current(dk *seal.DataKey, headerLen int, b []byte) bool {
	return len(b) > 0 && b[0] == formatSealed && dk.CurrentValue(headerLen, b)
}

// resealPatientRecord reseals the record, keeping its version, by
// compare-and-set on the header read.
func (s *Store) resealPatientRecord(ctx context.Context, id string, dk *seal.DataKey) (int, error) {
	for range s.opts.MaxUpdateAttempts {
		b, _, err := s.getPatient(ctx, id)
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if current(dk, versionedHeaderLen, b) {
			return 0, nil
		}
		p, err := s.openPatient(dk, id, b)
		if err != nil {
			return 0, err
		}
		rec, err := s.sealPatient(dk, p)
		if err != nil {
			return 0, err
		}
		status, _, err := s.run(ctx, s.scripts.casVersioned, s.k.patient(id), casHeader(b, versionedHeaderLen), rec)
		if err != nil {
			return 0, err
		}
		switch status {
		case stOK:
			return 1, nil
		case stNotFound:
			return 0, nil
		}
	}
	return 0, fmt.Errorf("patient record: %w", store.ErrConflict)
}

// resealCode reseals the patient's current activation code (keeping its
// TTL) if it still holds what was read.
func (s *Store) resealCode(ctx context.Context, id string, dk *seal.DataKey) (int, error) {
	key := s.k.patientCode(id)
	b, err := s.get(ctx, key)
	if errors.Is(err, redis.Nil) || (err == nil && current(dk, 1, b)) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	rec, err := openRecord(dk, kindCode, id, b)
	if err != nil {
		return 0, err
	}
	sealed, err := sealRecord(dk, kindCode, id, rec)
	if err != nil {
		return 0, err
	}
	status, _, err := s.run(ctx, s.scripts.resealValue, key, b, sealed)
	if err != nil || status != stOK {
		return 0, err // replaced or consumed meanwhile: its writer sealed it
	}
	return 1, nil
}

// resealAudit reseals the members of both audit windows.
func (s *Store) resealAudit(ctx context.Context, id string, dk *seal.DataKey) (int, error) {
	n := 0
	for _, key := range []string{s.k.audit(id), s.k.auditRefused(id)} {
		cctx, cancel := s.call(ctx)
		members, err := s.rdb.ZRange(cctx, key, 0, -1).Result()
		cancel()
		if err != nil {
			return n, err
		}
		var pairs []any
		for _, m := range members {
			i := strings.IndexByte(m, 0)
			if i < 0 || current(dk, 1, []byte(m[i+1:])) {
				continue
			}
			rec, err := openRecord(dk, kindAudit, m[:i], []byte(m[i+1:]))
			if err != nil {
				return n, err
			}
			sealed, err := sealRecord(dk, kindAudit, m[:i], rec)
			if err != nil {
				return n, err
			}
			pairs = append(pairs, m, m[:i+1]+string(sealed))
		}
		if len(pairs) == 0 {
			continue
		}
		got, err := s.resealMembers(ctx, key, 0, pairs)
		if err != nil {
			return n, err
		}
		n += got
	}
	return n, nil
}

// resealMembers replaces each (old, new) member of the sorted set key
// that is still there, new at score (or at old's score when score < 0).
func (s *Store) resealMembers(ctx context.Context, key string, score int, pairs []any) (int, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.eval(cctx, s.scripts.resealMembers, []string{key}, append([]any{score}, pairs...)...).Int()
}

// resealDoses reseals the dose confirmations still holding what was read.
func (s *Store) resealDoses(ctx context.Context, id string, dk *seal.DataKey) (int, error) {
	key := s.k.doses(id)
	cctx, cancel := s.call(ctx)
	all, err := s.rdb.HGetAll(cctx, key).Result()
	cancel()
	if err != nil {
		return 0, err
	}
	var args []any
	for occ, v := range all {
		if current(dk, 1, []byte(v)) {
			continue
		}
		rec, err := openRecord(dk, kindDose, occ, []byte(v))
		if err != nil {
			return 0, err
		}
		sealed, err := sealRecord(dk, kindDose, occ, rec)
		if err != nil {
			return 0, err
		}
		args = append(args, occ, v, sealed)
	}
	if len(args) == 0 {
		return 0, nil
	}
	cctx, cancel = s.call(ctx)
	defer cancel()
	return s.eval(cctx, s.scripts.resealFields, []string{key}, args...).Int()
}

// resealThreads reseals each of the patient's threads with its messages,
// in one script per thread that expects the thread's header as read.
func (s *Store) resealThreads(ctx context.Context, id string, dk *seal.DataKey) (int, error) {
	cctx, cancel := s.call(ctx)
	members, err := s.rdb.ZRange(cctx, s.k.patientThreads(id), 0, -1).Result()
	cancel()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range members {
		_, th, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		got, err := s.resealThread(ctx, id, th, dk)
		n += got
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Store) resealThread(ctx context.Context, patientID, id string, dk *seal.DataKey) (int, error) {
	for range s.opts.MaxUpdateAttempts {
		cctx, cancel := s.call(ctx)
		pipe := s.rdb.Pipeline()
		thCmd := pipe.Get(cctx, s.k.thread(id))
		msgCmd := pipe.ZRangeWithScores(cctx, s.k.threadMsgs(id), 0, -1)
		_, err := pipe.Exec(cctx)
		cancel()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		b, _ := thCmd.Bytes()
		hlen := versionedHeaderLen
		if b[0] == formatSealed {
			pid, n, err := threadPatient(b)
			if err != nil {
				return 0, err
			}
			if pid != patientID {
				return 0, nil
			}
			hlen = n
		}
		t, err := s.openThread(dk, id, b)
		if err != nil {
			return 0, err
		}
		if t.PatientID != patientID {
			return 0, nil
		}
		resealed := 0
		rec := b
		if !current(dk, hlen, b) {
			if rec, err = s.sealThread(dk, t); err != nil {
				return 0, err
			}
			resealed++
		}
		var pairs []any
		for _, z := range msgCmd.Val() {
			mem := z.Member.(string)
			if len(mem) < 9 || current(dk, 1, []byte(mem[8:])) {
				continue
			}
			msg, err := s.decodeMessage(dk, id, mem)
			if err != nil {
				return 0, err
			}
			nm, err := s.messageMember(dk, msg)
			if err != nil {
				return 0, err
			}
			pairs = append(pairs, mem, string(nm))
		}
		if resealed == 0 && len(pairs) == 0 {
			return 0, nil
		}
		args := append([]any{casHeader(b, hlen), rec}, pairs...)
		status, _, err := s.runKeys(ctx, s.scripts.resealThread, []string{s.k.thread(id), s.k.threadMsgs(id)}, args...)
		if err != nil {
			return 0, err
		}
		switch status {
		case stOK:
			return resealed + len(pairs)/2, nil
		case stNotFound:
			return 0, nil
		}
	}
	return 0, fmt.Errorf("thread %s: %w", id, store.ErrConflict)
}

// reencryptDirectory seals the accounts not sealed yet and moves e-mail
// claims, activation codes and invites from clear keys to blind ones. It
// returns how many values it rewrote.
func (s *Store) reencryptDirectory(ctx context.Context) (int, error) {
	n := 0
	cctx, cancel := s.call(ctx)
	accounts, err := s.scanKeys(cctx, s.opts.Prefix+":{a:*}")
	cancel()
	if err != nil {
		return 0, err
	}
	dir := s.vault.Directory()
	for _, key := range accounts {
		b, err := s.get(ctx, key)
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return n, err
		}
		if current(dir, versionedHeaderLen, b) {
			continue
		}
		id := unescapeTag(key, s.opts.Prefix+":{a:")
		a, err := s.openAccount(id, b)
		if err != nil {
			return n, err
		}
		rec, err := s.encodeAccount(a)
		if err != nil {
			return n, err
		}
		if rec, err = sealVersioned(dir, kindAccount, a.ID, rec, nil); err != nil {
			return n, err
		}
		status, _, err := s.run(ctx, s.scripts.casVersioned, key, casHeader(b, versionedHeaderLen), rec)
		if err != nil {
			return n, err
		}
		if status == stOK {
			n++
		}
	}
	moved, err := s.moveLegacyKeys(ctx)
	if err != nil {
		return n + moved, err
	}
	return n + moved, s.rewrapVault(ctx)
}

// isBlind reports whether a key's tag holds a blind index (32 lower-case
// hex digits) rather than a clear value.
func isBlind(tag string) bool {
	if len(tag) != 32 {
		return false
	}
	for i := range len(tag) {
		if c := tag[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// unescapeTag returns the id inside key's hash tag, after prefix (which
// ends with "{<kind>:").
func unescapeTag(key, prefix string) string {
	id := strings.TrimPrefix(key, prefix)
	if i := strings.IndexByte(id, '}'); i >= 0 {
		id = id[:i]
	}
	return strings.NewReplacer("%7D", "}", "%7B", "{", "%25", "%").Replace(id)
}

// moveLegacyKeys moves e-mail claims, activation-code index entries and
// invites written under clear keys to their blind keys (keeping their
// TTL) and deletes the clear ones.
func (s *Store) moveLegacyKeys(ctx context.Context) (int, error) {
	n := 0
	for _, kind := range []string{"e", "c", "i"} {
		prefix := s.opts.Prefix + ":{" + kind + ":"
		cctx, cancel := s.call(ctx)
		found, err := s.scanKeys(cctx, prefix+"*}")
		cancel()
		if err != nil {
			return n, err
		}
		for _, key := range found {
			clear := unescapeTag(key, prefix)
			if isBlind(clear) {
				continue
			}
			cctx, cancel := s.call(ctx)
			v, err := s.rdb.Get(cctx, key).Bytes()
			ttl, terr := s.rdb.PTTL(cctx, key).Result()
			cancel()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err = errors.Join(err, terr); err != nil {
				return n, err
			}
			var to string
			value := v
			switch kind {
			case "e":
				to = s.emailKey(clear)
			case "c":
				to = s.codeKey(clear)
			case "i":
				blind := s.blind(blindInvite, clear)
				to = s.k.invite(blind)
				var w inviteWire
				if err := s.decode(v, &w); err == nil {
					list := s.k.patientInvites(w.PatientID)
					if err := s.write(ctx, list, func(p redis.Pipeliner) redis.Cmder { return p.SAdd(ctx, list, blind) }); err != nil {
						return n, err
					}
				}
				if len(v) > 0 && v[0] != formatSealed && s.sealing() {
					if value, err = sealRecord(s.vault.Directory(), kindInvite, blind, v); err != nil {
						return n, err
					}
				}
			}
			var ms int64
			if ttl > 0 {
				ms = ttl.Milliseconds()
			}
			// Create-if-absent: a blind key written meanwhile wins.
			if err := s.createRecord(ctx, "move", to, value, ms); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
				return n, err
			}
			if err := s.dropLegacy(ctx, key, string(v)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// RewriteAOF asks every primary to rewrite its append-only file
// (BGREWRITEAOF), which drops the history the file kept: values written
// before sealing, under retired key versions or of deleted patients.
// Run it after a complete Reencrypt pass; it returns once every primary
// has started its rewrite. Replicas keep their own files and need the
// same command.
func (s *Store) RewriteAOF(ctx context.Context) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.forEachPrimary(cctx, func(ctx context.Context, c *redis.Client) error {
		err := c.BgRewriteAOF(ctx).Err()
		if err != nil && strings.Contains(err.Error(), "already in progress") {
			return nil
		}
		return err
	})
	if err != nil {
		return s.fail("redisstore.RewriteAOF", err)
	}
	return nil
}
