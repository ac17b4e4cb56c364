// Package redisstore implements the store contract (backend/store) on Redis
// through a go-redis UniversalClient: a single node, a Sentinel-managed
// primary or a Redis Cluster.
//
// # Key layout
//
// Every key starts with Options.Prefix (default "mtm") and carries a hash
// tag, so that every key one atomic step touches lives in one cluster slot:
//
//	mtm:{ph:<pharmacy>}            pharmacy record
//	mtm:{ph:<pharmacy>}:patients   sorted set of the pharmacy's patient ids (ZRANGEBYLEX paging)
//	mtm:{p:<patient>}              patient record (header with the record version + CBOR)
//	mtm:{p:<patient>}:code         the patient's current activation code
//	mtm:{p:<patient>}:audit        the patient's audit window: sorted set of "<event id>\x00<sealed record>"
//	mtm:{p:<patient>}:key          the patient's data key, wrapped by the KEK (see sealing.go)
//	mtm:{p:<patient>}:invites      blind indexes of the patient's invites (for DeletePatient)
//	mtm:{p:<patient>}:erase        the plan of an unfinished DeletePatient (delete.go)
//	mtm:{vault}                    the store's blind-index and directory keys, wrapped by the KEK
//	mtm:{nd:<blind>}               set of patient ids by pharmacy, family name and birth date (FindPatients)
//	mtm:{c:<blind>}                activation code hash (blind index) -> patient id
//	mtm:{a:<account>}              account record (header with the record version + sealed CBOR)
//	mtm:{i:<blind>}                caregiver invite (by the blind index of its code hash)
//	mtm:{e:<blind>}                normalized e-mail (blind index) -> account id (uniqueness claim)
//	mtm:{f:<family>}               refresh family: current token, revoked flag, expiry, the token spent last (with its sealed successor and grace end)
//	mtm:{t:<token hash>}           refresh token hash -> expiry, family id, role, subject
//	mtm:{rl:<blind>}:<window start> rate-limit counter of one fixed window (blind index of the key)
//	mtm:{sk}                       hash of the signing keys: kid -> creation time + sealed key
//	mtm:{...}:op:<op id>           short-lived reply of one write (see Retries)
//
// Ids are escaped ('%', '{' and '}' become %25, %7B, %7D) so an id can never
// end a hash tag early. Keys hold ids, times and blind indexes only: an
// e-mail, a code hash, an invite hash or a throttle key (which names
// e-mails and addresses) is looked up by its blind index
// (seal.Vault.Blind). Clear keys an earlier release wrote (e-mail claims,
// codes, invites) are still read until Reencrypt's directory phase moves
// them.
//
// # PHI at rest
//
// Every value that names a patient or a medicine is sealed (envelope
// encryption, backend/store/seal): under the patient's data key, kept
// wrapped in the patient's slot, the patient record, threads, messages,
// audit windows, dose confirmations and the current activation code;
// under the store's directory key the accounts and invites. A sealed
// value is its clear header (format byte formatSealed, the record version
// the Lua scripts compare, and for threads the patient id) followed by a
// ciphertext bound to that header, the record's kind and id and the
// patient: see sealing.go. Values written before sealing read as they are
// and are sealed on their next write or by Reencrypt (reencrypt.go).
// Reminder keys, notification history, work-list and inbox entries and the
// change log hold ids, kinds and times only and are not sealed.
//
// # Records
//
// Records are CBOR (github.com/fxamacker/cbor/v2) with integer keys, after a
// leading format byte (formatV1). Patient and account records carry the record version
// as 8 big-endian bytes between the format byte and the CBOR so that the
// compare-and-set script can check it with GETRANGE without decoding CBOR.
// Patient records (about 10 KB of CBOR with 20 medicines) are written with
// format byte formatZstd: the same header, uncompressed, then the CBOR as
// one zstd frame, which takes a record to about 3-4 KB; records written as
// formatV1 still read, and their next update rewrites them compressed (the
// compare-and-set expects the header it read, format byte included).
// Times are stored as Unix nanoseconds in UTC, dates as YYYYMMDD integers.
// A reader refuses a format byte it does not know instead of guessing.
//
// # Atomic steps
//
// Single-slot steps need no ordering: PutInvite/ConsumeInvite touch only
// the invite's key, AppendAuditEvent only the patient's audit window
// (append and trim in one script).
//
// Every write that must be atomic is one Lua script (redis.NewScript, run
// with EVALSHA and EVAL as fallback) over keys of one slot. UpdatePatient is
// optimistic: it reads the record, runs the caller's closure and stores the
// result with a compare-and-set script on the record version; on a
// conflict it re-reads and runs the closure again, at most
// Options.MaxUpdateAttempts times, then returns store.ErrConflict.
//
// A few operations span two slots and are therefore two steps, ordered so
// that stopping between them (a crash, a lost connection) never exposes a
// half-written state:
//
//   - CreatePatient adds the id to the pharmacy's index first, then creates
//     the record. ListPatients skips index entries without a record or whose
//     record names another pharmacy, so a dangling entry is invisible.
//   - CreateAccount claims the e-mail first (value: account id and claim
//     time), then creates the account record, then checks the claim is still
//     its own. GetAccountByEmail only answers when the claim and the record
//     agree. A claim whose account never appeared is taken over by a later
//     CreateAccount once it is older than Options.ClaimGrace.
//   - PutActivationCode stores hash -> patient first, then the patient's
//     current code (replacing the earlier one) and then deletes the earlier
//     code's index. Lookups require the patient's current code to carry the
//     presented hash, so a replaced or half-written code never works.
//     ConsumeActivationCode deletes the current code with a
//     delete-if-unchanged script: of concurrent consumers exactly one wins.
//   - CreateRefreshToken and RotateRefreshToken store the new token's index
//     (hash -> family) first, then change the family in one script that does
//     rotation, repeat and reuse detection and family revocation together. An index
//     entry whose token never reached the family is deleted best effort and
//     is harmless: the family's current token is the only live one.
//
// # Retries
//
// go-redis re-sends a command after a connection error (MaxRetries). A
// write whose reply was lost would then run twice: an UpdatePatient would
// see its own write as a conflict and apply the closure again, a rotation
// would look like reuse and revoke the family. Every write script is
// therefore idempotent: it takes a per-call operation id, stores its reply
// under mtm:{tag}:op:<id> in the same slot (expiring after Options.OpTTL)
// and, when run again with the same id, returns the stored reply without
// writing. Reads, RevokeRefreshFamily and AppendAuditEvent (a sorted set
// holds a member once; trimming to keep is a fixed point) are naturally
// idempotent. So go-redis retries stay enabled for everything.
//
// # Failures
//
// Every call runs under Options.Timeout (on top of the caller's deadline).
// Timeouts, canceled contexts, an exhausted pool, refused or lost
// connections and LOADING/CLUSTERDOWN/TRYAGAIN/MASTERDOWN/READONLY/MISCONF
// replies are returned wrapped in store.ErrUnavailable. When a write fails
// with store.ErrUnavailable it may or may not have been applied.
//
// Expiring records (activation codes, refresh tokens, rate-limit windows)
// are judged against the caller's now; Redis TTLs only collect garbage and
// are set relative to the store's clock with Options.ExpiryGrace of slack,
// so clock skew between the service and Redis cannot expire a live record.
//
// # Durability
//
// Redis acknowledges a write before it is on disk unless appendonly is
// yes and appendfsync is always. CheckDurability reports, per primary,
// settings under which acknowledged writes can be lost or records evicted.
package redisstore
