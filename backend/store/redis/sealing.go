package redisstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// PHI at rest (backend/store/seal, store.AtRest).
//
// The store's vault keys (blind-index key and directory key, wrapped by
// Options.KEK) live under mtm:{vault}, created once with SET NX. Each
// patient's wrapped data key lives in the patient's slot:
//
//	mtm:{vault}          seal.VaultKeys (wrapped)
//	mtm:{p:<patient>}:key the patient's data key, wrapped by the KEK
//
// A sealed value is its clear header followed by a Tink ciphertext that
// binds that header (seal.DataKey.SealValue): the header is formatSealed,
// then for versioned records the 8-byte version (which the Lua
// compare-and-set scripts read with GETRANGE) and for threads the patient
// id (uvarint length + bytes: a reader needs it to pick the data key). The
// plaintext is the record as it was written before sealing: its own format
// byte (formatV1 or formatZstd) and the CBOR, compressed or not, so that
// encryption comes after compression.

// formatSealed marks a sealed value (see above).
const formatSealed byte = 3

// Record kinds bound into each ciphertext's associated data.
const (
	kindPatient = "patient"
	kindAccount = "account"
	kindThread  = "thread"
	kindMessage = "message"
	kindAudit   = "audit"
	kindDose    = "dose"
	kindCode    = "code"
	kindInvite  = "invite"
)

// Blind-index purposes.
const (
	blindEmail    = "account-email"
	blindCode     = "activation-code"
	blindInvite   = "invite-code"
	blindThrottle = "throttle"
	blindNameDOB  = "patient-name-dob"
)

func (k keys) vault() string                   { return k.prefix + ":{vault}" }
func (k keys) patientKey(id string) string     { return k.tag("p", id) + ":key" }
func (k keys) patientInvites(id string) string { return k.tag("p", id) + ":invites" }
func (k keys) nameDOB(blind string) string     { return k.tag("nd", blind) }
func (k keys) legacyEmail(e string) string     { return k.tag("e", e) }
func (k keys) legacyCode(h string) string      { return k.tag("c", h) }
func (k keys) legacyInvite(h string) string    { return k.tag("i", h) }

// errNoKEK is New's answer without Options.KEK.
var errNoKEK = errors.New("no key-encryption key (Options.KEK): the Redis store seals PHI at rest and will not open without one")

// openVault reads the store's vault keys, creating them when absent (SET
// NX then GET, so that processes opening a new store at once agree), and
// opens them under kek: seal.ErrWrongKEK when another KEK wrapped them.
func (s *Store) openVault(ctx context.Context) error {
	fresh, err := seal.NewVaultKeys(s.opts.KEK)
	if err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	key := s.k.vault()
	if err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder {
		return p.SetNX(cctx, key, fresh.Marshal(), 0)
	}); err != nil {
		return s.fail("vault keys", err)
	}
	vk, err := s.readVaultKeys(cctx)
	if err != nil {
		return err
	}
	v, err := seal.OpenVault(s.opts.KEK, vk, s.opts.KeyCache)
	if err != nil {
		return err
	}
	s.vault = v
	return nil
}

// readVaultKeys reads the store's wrapped vault keys.
func (s *Store) readVaultKeys(ctx context.Context) (seal.VaultKeys, error) {
	b, err := s.rdb.Get(ctx, s.k.vault()).Bytes()
	if err != nil {
		return seal.VaultKeys{}, s.fail("vault keys", err)
	}
	return seal.UnmarshalVaultKeys(b)
}

// rewrapVault wraps the store's own keys again under the KEK's current
// primary version (the end of a re-encryption pass: after a KEK rotation,
// the old KEK version can then be removed). Two passes racing write the
// same keys, wrapped alike.
func (s *Store) rewrapVault(ctx context.Context) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	key := s.k.vault()
	vk, err := s.readVaultKeys(cctx)
	if err != nil {
		return err
	}
	if vk, err = s.vault.Rewrap(vk); err != nil {
		return err
	}
	if err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder {
		return p.Set(cctx, key, vk.Marshal(), 0)
	}); err != nil {
		return s.fail("vault keys", err)
	}
	return nil
}

// blind is the blind index of value for purpose.
func (s *Store) blind(purpose, value string) string { return s.vault.Blind(purpose, value) }

// sealing reports whether new values are written sealed (not NoSeal).
func (s *Store) sealing() bool { return !s.opts.NoSeal }

// dataKey opens a patient's wrapped data key; nil (nothing sealed can be
// read, nothing is sealed on write) when wrapped is empty.
func (s *Store) dataKey(patientID string, wrapped []byte) (*seal.DataKey, error) {
	if len(wrapped) == 0 {
		return nil, nil
	}
	dk, err := s.vault.PatientKey(patientID, wrapped)
	if err != nil {
		return nil, fmt.Errorf("data key of patient %s: %w", patientID, err)
	}
	return dk, nil
}

// writeKey returns the data key a write for the patient seals under,
// creating the patient's key when there is none yet (a patient created
// before sealing, or values written before their patient); nil with
// Options.NoSeal.
func (s *Store) writeKey(ctx context.Context, patientID string) (*seal.DataKey, error) {
	dk, _, err := s.writeKeyWrapped(ctx, patientID)
	return dk, err
}

// writeKeyWrapped is writeKey that also returns the wrapped key, which
// append scripts compare with the stored one so that a value is never
// sealed under a key Reencrypt has just replaced.
func (s *Store) writeKeyWrapped(ctx context.Context, patientID string) (*seal.DataKey, []byte, error) {
	if !s.sealing() {
		return nil, nil, nil
	}
	wrapped, err := s.ensurePatientKey(ctx, patientID)
	if err != nil {
		return nil, nil, err
	}
	dk, err := s.dataKey(patientID, wrapped)
	return dk, wrapped, err
}

// casHeader is the prefix of a stored versioned value that a
// compare-and-set expects: the clear header (headerLen bytes) and, for a
// sealed value, the Tink prefix of the ciphertext (0x01 and the id of the
// key version that sealed it). A re-encryption that reseals a value under
// a new key version keeps its record version but changes this prefix, so
// a writer that read the value, and the key, before the rotation fails
// its compare-and-set and reads both again.
func casHeader(b []byte, headerLen int) []byte {
	if len(b) > 0 && b[0] == formatSealed && len(b) >= headerLen+5 {
		return b[: headerLen+5 : headerLen+5]
	}
	return b[:versionedHeaderLen:versionedHeaderLen]
}

// wrappedKeys remembers patients' wrapped data keys for the appends that
// check, in their script, that the stored key is still the one they
// sealed under (audit events, doses): those skip the GET of the key. A
// record read that opens a key remembers it here too, so the audit event
// of a patient's first read needs no GET either. A stale entry (Reencrypt
// or DeletePatient changed the key) costs one retry. Bounded: emptied
// when it reaches Options.KeyCache entries.
type wrappedKeys struct {
	mu  sync.Mutex
	max int
	m   map[string][]byte
}

func (w *wrappedKeys) get(id string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[id]
}

func (w *wrappedKeys) put(id string, wrapped []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil || len(w.m) >= w.max {
		w.m = make(map[string][]byte)
	}
	w.m[id] = wrapped
}

func (w *wrappedKeys) drop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// appendKey is the data key and wrapped key an audit or dose append seals
// under: a remembered one, or the stored one (created if absent).
func (s *Store) appendKey(ctx context.Context, patientID string) (*seal.DataKey, []byte, error) {
	if !s.sealing() {
		return nil, nil, nil
	}
	if w := s.wrapped.get(patientID); w != nil {
		if dk, err := s.dataKey(patientID, w); err == nil {
			return dk, w, nil
		}
	}
	dk, wrapped, err := s.writeKeyWrapped(ctx, patientID)
	if err == nil {
		s.wrapped.put(patientID, wrapped)
	}
	return dk, wrapped, err
}

// keyForWrite is the data key to seal a patient's value under given the
// key read with it (dk, nil for a patient written before sealing, who gets
// a key now); nil with Options.NoSeal.
func (s *Store) keyForWrite(ctx context.Context, patientID string, dk *seal.DataKey) (*seal.DataKey, error) {
	if !s.sealing() {
		return nil, nil
	}
	if dk != nil {
		return dk, nil
	}
	return s.writeKey(ctx, patientID)
}

// ensurePatientKey returns the patient's wrapped data key, creating it
// when absent (SET NX, then GET: the first writer's key wins).
func (s *Store) ensurePatientKey(ctx context.Context, patientID string) ([]byte, error) {
	key := s.k.patientKey(patientID)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	b, err := s.rdb.Get(cctx, key).Bytes()
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, redis.Nil) {
		return nil, err
	}
	fresh, err := s.vault.NewPatientKey(patientID)
	if err != nil {
		return nil, err
	}
	if err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder { return p.SetNX(cctx, key, fresh, 0) }); err != nil {
		return nil, err
	}
	return s.rdb.Get(cctx, key).Bytes()
}

// readKeys reads the wrapped data keys of patients in one pipeline and
// opens them; a patient without a key maps to nil.
func (s *Store) readKeys(ctx context.Context, patientIDs []string) (map[string]*seal.DataKey, error) {
	out := make(map[string]*seal.DataKey, len(patientIDs))
	if len(patientIDs) == 0 {
		return out, nil
	}
	cmds := make(map[string]*redis.StringCmd, len(patientIDs))
	pipe := s.rdb.Pipeline()
	for _, id := range patientIDs {
		if _, ok := cmds[id]; !ok {
			cmds[id] = pipe.Get(ctx, s.k.patientKey(id))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for id, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			out[id] = nil
			continue
		}
		if err != nil {
			return nil, err
		}
		if out[id], err = s.dataKey(id, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sealInner seals inner (a record with its own format byte) behind clear,
// whose first byte becomes formatSealed.
func sealInner(dk *seal.DataKey, kind, id string, clear, inner []byte) ([]byte, error) {
	clear[0] = formatSealed
	return dk.SealValue(kind, id, clear, inner)
}

// openInner opens a sealed value whose clear header is headerLen bytes and
// returns the inner record (format byte and body). A value sealed for
// another record or patient, or altered, fails with seal.ErrTampered.
func openInner(dk *seal.DataKey, kind, id string, headerLen int, b []byte) ([]byte, error) {
	if dk == nil {
		return nil, fmt.Errorf("%w: sealed %s %s but its patient has no data key", seal.ErrTampered, kind, id)
	}
	inner, err := dk.OpenValue(kind, id, headerLen, b)
	if err != nil {
		return nil, err
	}
	if len(inner) < 1 {
		return nil, errFormat
	}
	return inner, nil
}

// sealRecord seals what encode wrote (formatV1 + CBOR) as an unversioned
// sealed value: formatSealed, then the ciphertext. With dk nil (NoSeal)
// the record stays as it is.
func sealRecord(dk *seal.DataKey, kind, id string, rec []byte) ([]byte, error) {
	if dk == nil {
		return rec, nil
	}
	return sealInner(dk, kind, id, []byte{0}, rec)
}

// openRecord returns the formatV1 record of an unversioned value, opening
// it when sealed.
func openRecord(dk *seal.DataKey, kind, id string, b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == formatSealed {
		return openInner(dk, kind, id, 1, b)
	}
	return b, nil
}

// sealVersioned turns a versioned record (format, 8-byte version, body),
// as encodeVersioned or encodeCompressed wrote it, into a sealed value
// whose clear header is formatSealed, the version and extra (nil but for
// threads). With dk nil it returns rec unchanged.
func sealVersioned(dk *seal.DataKey, kind, id string, rec, extra []byte) ([]byte, error) {
	if dk == nil {
		return rec, nil
	}
	clear := make([]byte, 0, versionedHeaderLen+len(extra))
	clear = append(clear, rec[:versionedHeaderLen]...)
	clear = append(clear, extra...)
	inner := make([]byte, 0, 1+len(rec)-versionedHeaderLen)
	inner = append(inner, rec[0])
	inner = append(inner, rec[versionedHeaderLen:]...)
	return sealInner(dk, kind, id, clear, inner)
}

// openVersioned returns a versioned record in its unsealed layout (format
// byte, version, body) whatever it was stored as; headerLen is the sealed
// value's clear header length.
func openVersioned(dk *seal.DataKey, kind, id string, headerLen int, b []byte) ([]byte, error) {
	if len(b) < versionedHeaderLen || b[0] != formatSealed {
		return b, nil
	}
	inner, err := openInner(dk, kind, id, headerLen, b)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, versionedHeaderLen+len(inner)-1)
	out = append(out, inner[0])
	out = append(out, b[1:versionedHeaderLen]...)
	return append(out, inner[1:]...), nil
}

// threadExtra is the clear part of a sealed thread after the version: the
// patient id, whose data key seals the thread.
func threadExtra(patientID string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(patientID)))
	return append(b, patientID...)
}

// threadPatient reads the patient id and the clear header length of a
// sealed thread value.
func threadPatient(b []byte) (string, int, error) {
	if len(b) < versionedHeaderLen+1 {
		return "", 0, errFormat
	}
	n, m := binary.Uvarint(b[versionedHeaderLen:])
	if m <= 0 || uint64(len(b)-versionedHeaderLen-m) < n {
		return "", 0, errFormat
	}
	start := versionedHeaderLen + m
	return string(b[start : start+int(n)]), start + int(n), nil
}

// pipedKey opens the wrapped data key a pipelined GET of patientKey read;
// nil when the patient has none.
func (s *Store) pipedKey(patientID string, cmd *redis.StringCmd) (*seal.DataKey, error) {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.dataKey(patientID, b)
}

// dropLegacy deletes a key written before blind indexes if it still holds
// value (a script without a reply slot: its name would repeat the clear
// value of the key's tag).
func (s *Store) dropLegacy(ctx context.Context, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.eval(cctx, s.scripts.dropIfEqual, []string{key}, value).Err()
}

// sealedRetries is how often a read runs again when a value does not open:
// a read that takes the value and the key in two steps can see a value
// sealed under a key version that Reencrypt retired in between (it had
// resealed the value first), and reads both again.
const sealedRetries = 3

// retrySealed runs read again while it fails with seal.ErrTampered, up to
// sealedRetries times.
func retrySealed(read func() error) error {
	var err error
	for range sealedRetries {
		if err = read(); !errors.Is(err, seal.ErrTampered) {
			return err
		}
	}
	return err
}

// Threads and activation codes are written without their script checking
// the patient's stored data key (a thread lives in its own Cluster slot).
// A writer that read the key just before a re-encryption pass rotated it,
// and stored its value just after the pass looked at the patient's threads
// and codes, would leave that value under a version the pass then retires:
// it would no longer open. So after storing, such a writer reads the key
// again and, when it changed, seals what it wrote (it still holds the
// clear value) under the current key, compare-and-set against the bytes it
// stored: a value someone rewrote meanwhile was sealed by them.
//
// resealThreadIfKeyMoved does that for a new thread and its first message.
func (s *Store) resealThreadIfKeyMoved(ctx context.Context, t store.Thread, first store.Message, usedWrapped, rec, member []byte) error {
	if !s.sealing() {
		return nil
	}
	now, err := s.ensurePatientKey(ctx, t.PatientID)
	if err != nil || bytes.Equal(now, usedWrapped) {
		return err
	}
	dk, err := s.dataKey(t.PatientID, now)
	if err != nil {
		return err
	}
	rec2, err := s.sealThread(dk, t)
	if err != nil {
		return err
	}
	member2, err := s.messageMember(dk, first)
	if err != nil {
		return err
	}
	_, hlen, err := threadPatient(rec)
	if err != nil {
		return err
	}
	_, _, err = s.runKeys(ctx, s.scripts.resealThread, []string{s.k.thread(t.ID), s.k.threadMsgs(t.ID)},
		casHeader(rec, hlen), rec2, string(member), string(member2))
	return err
}

// resealCodeIfKeyMoved does the same for a patient's activation code
// (clear is the code's record before sealing, rec what was stored).
func (s *Store) resealCodeIfKeyMoved(ctx context.Context, patientID string, usedWrapped, clear, rec []byte) error {
	if !s.sealing() {
		return nil
	}
	now, err := s.ensurePatientKey(ctx, patientID)
	if err != nil || bytes.Equal(now, usedWrapped) {
		return err
	}
	dk, err := s.dataKey(patientID, now)
	if err != nil {
		return err
	}
	rec2, err := sealRecord(dk, kindCode, patientID, clear)
	if err != nil {
		return err
	}
	_, _, err = s.run(ctx, s.scripts.resealValue, s.k.patientCode(patientID), rec, rec2)
	return err
}

// sealedHook runs the test hook, if any, between sealing a thread or code
// and storing it: where a rotation would strand it.
func (s *Store) sealedHook(patientID string) {
	if s.testHookSealed != nil {
		s.testHookSealed(patientID)
	}
}
