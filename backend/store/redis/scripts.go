package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Script replies: every write script returns {status, payload}.
const (
	stOK       = "OK"
	stExists   = "EXISTS"
	stNotFound = "NOTFOUND"
	stConflict = "CONFLICT"
	stTaken    = "TAKEN"
	stReused   = "REUSED"
	stRepeat   = "REPEAT"
	stRevoked  = "REVOKED"
)

// idempotent is the prelude of every write script. KEYS[1] is the
// operation's reply slot, ARGV[1] how long to keep it (ms). A re-run with
// the same KEYS[1] (go-redis resending after a lost reply) returns the
// first run's reply and writes nothing.
const idempotent = `
local function finish(status, payload)
  payload = payload or ''
  redis.call('SET', KEYS[1], status .. '\n' .. payload, 'PX', ARGV[1])
  return {status, payload}
end
local done = redis.call('GET', KEYS[1])
if done then
  local i = string.find(done, '\n', 1, true)
  return {string.sub(done, 1, i - 1), string.sub(done, i + 1)}
end
`

// scripts are the Lua steps; each touches KEYS[2] (and KEYS[1], its op
// slot) only, which share one hash tag.
type scripts struct {
	create, casVersioned, claimEmail, swap, delIfEqual, replace, createFamily, rotate, allow *redis.Script
	revoke, appendAudit, forget                                                              *redis.Script
	resealValue, resealThread, resealMembers, resealFields, dropIfEqual                      *redis.Script
	msg                                                                                      messagingScripts
	changes                                                                                  changeScripts
}

func newScripts() scripts {
	w := func(body string) *redis.Script { return redis.NewScript(idempotent + body) }
	return scripts{
		msg:     newMessagingScripts(),
		changes: newChangeScripts(),
		// ARGV[2] value, ARGV[3] TTL in ms (0: none).
		create: w(`
if redis.call('EXISTS', KEYS[2]) == 1 then return finish('EXISTS') end
redis.call('SET', KEYS[2], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return finish('OK')`),
		// ARGV[2] expected header (format byte + version), ARGV[3] new record.
		casVersioned: w(`
local cur = redis.call('GETRANGE', KEYS[2], 0, string.len(ARGV[2]) - 1)
if cur == '' then return finish('NOTFOUND') end
if cur ~= ARGV[2] then return finish('CONFLICT') end
redis.call('SET', KEYS[2], ARGV[3])
return finish('OK')`),
		// ARGV[2] account id, ARGV[3] claim value "<ms>\n<id>".
		claimEmail: w(`
local v = redis.call('GET', KEYS[2])
if not v then
  redis.call('SET', KEYS[2], ARGV[3])
  return finish('OK')
end
local i = string.find(v, '\n', 1, true)
if i and string.sub(v, i + 1) == ARGV[2] then return finish('OK') end
return finish('TAKEN', v)`),
		// ARGV[2] expected value, ARGV[3] new value.
		swap: w(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return finish('TAKEN') end
redis.call('SET', KEYS[2], ARGV[3])
return finish('OK')`),
		// ARGV[2] expected value; deletes the key only if it still holds it.
		delIfEqual: w(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return finish('NOTFOUND') end
redis.call('DEL', KEYS[2])
return finish('OK')`),
		// ARGV[2] value, ARGV[3] TTL ms; returns the value it replaced.
		replace: w(`
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return finish('OK', old or '')`),
		// ARGV[2] hash, ARGV[3] token record, ARGV[4] expiry (unix ms), ARGV[5] TTL ms.
		createFamily: w(`
if redis.call('EXISTS', KEYS[2]) == 1 then return finish('EXISTS') end
redis.call('HSET', KEYS[2], 'h', ARGV[2], 'r', ARGV[3], 'x', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return finish('OK')`),
		// Rotation, repeat and reuse detection and revocation in one step.
		// The family hash holds the live token (h, r), the expiry (x), the
		// revocation mark (rev) and the token spent last (p, its record pr,
		// the sealed successor ps, the end of its grace pg, unix ms).
		// ARGV[2] spent hash, ARGV[3] next hash, ARGV[4] next record,
		// ARGV[5] next expiry (unix ms), ARGV[6] TTL ms, ARGV[7] sealed
		// successor, ARGV[8] grace end (unix ms), ARGV[9] now (unix ms).
		// A repeat answers the spent record, the live record and the sealed
		// successor, each as "<length>:<bytes>".
		rotate: w(`
local f = redis.call('HMGET', KEYS[2], 'h', 'r', 'rev', 'x', 'p', 'pr', 'ps', 'pg')
if f[3] == '1' then return finish('REVOKED') end
if not f[1] then return finish('NOTFOUND') end
if f[1] == ARGV[2] then
  redis.call('HSET', KEYS[2], 'h', ARGV[3], 'r', ARGV[4], 'p', ARGV[2], 'pr', f[2], 'ps', ARGV[7], 'pg', ARGV[8])
  if tonumber(ARGV[5]) > tonumber(f[4] or '0') then
    redis.call('HSET', KEYS[2], 'x', ARGV[5])
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  end
  return finish('OK', f[2])
end
if f[5] == ARGV[2] and tonumber(ARGV[9]) < tonumber(f[8] or '0') then
  local out = ''
  for _, v in ipairs({f[6] or '', f[2] or '', f[7] or ''}) do
    out = out .. string.len(v) .. ':' .. v
  end
  return finish('REPEAT', out)
end
redis.call('HSET', KEYS[2], 'rev', '1')
redis.call('HDEL', KEYS[2], 'h', 'r', 'p', 'pr', 'ps', 'pg')
return finish('REUSED')`),
		// ARGV[2] window TTL ms; returns the count after this attempt.
		allow: w(`
local n = redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return finish('OK', tostring(n))`),
		// ARGV[2] how many attempts to take back (0: all).
		forget: w(`
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = tonumber(ARGV[2])
if v > 0 then
  if n > 0 and n < v then redis.call('DECRBY', KEYS[2], n) else redis.call('DEL', KEYS[2]) end
end
return finish('OK')`),
		// Naturally idempotent (a sorted set holds a member once):
		// KEYS[1] audit window, KEYS[2] the patient's data key, ARGV[1]
		// member, ARGV[2] keep, ARGV[3] the wrapped key the member is
		// sealed under ('' when unsealed): -1 without writing when the
		// stored key is another (Reencrypt replaced it).
		appendAudit: redis.NewScript(`
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
if over < 0 then over = 0 end
return over`),
		// Re-encryption (reencrypt.go). ARGV[2] expected value, ARGV[3]
		// the value resealed; the TTL stays.
		resealValue: w(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return finish('TAKEN') end
redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL')
return finish('OK')`),
		// KEYS[2] thread, KEYS[3] its messages. ARGV[2] expected header,
		// ARGV[3] the thread resealed, ARGV[4..] (old, new) message
		// members: each new one takes its old one's score.
		resealThread: w(`
local cur = redis.call('GETRANGE', KEYS[2], 0, string.len(ARGV[2]) - 1)
if cur == '' then return finish('NOTFOUND') end
if cur ~= ARGV[2] then return finish('CONFLICT') end
redis.call('SET', KEYS[2], ARGV[3])
for i = 4, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if score then
    redis.call('ZREM', KEYS[3], ARGV[i])
    redis.call('ZADD', KEYS[3], score, ARGV[i + 1])
  end
end
return finish('OK')`),
		// Naturally idempotent: KEYS[1] sorted set; ARGV[1] score, then
		// (old, new) members: a new one replaces its old one if that is
		// still there. Returns how many were replaced.
		resealMembers: redis.NewScript(`
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i + 1])
    n = n + 1
  end
end
return n`),
		// Naturally idempotent: KEYS[1] hash; (field, old, new) triples:
		// a field still holding old gets new. Returns how many did.
		resealFields: redis.NewScript(`
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n`),
		// Naturally idempotent, and without a reply slot, whose name
		// would repeat the key's clear tag: deletes a key written before
		// blind indexes (KEYS[1]) if it holds ARGV[1].
		dropIfEqual: redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`),
		// Naturally idempotent: KEYS[1] family.
		revoke: redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'rev', '1')
redis.call('HDEL', KEYS[1], 'h', 'r', 'p', 'pr', 'ps', 'pg')
return 1`),
	}
}

// run executes an idempotent write script on key under a fresh operation
// id and Options.Timeout, returning the script's status and payload.
func (s *Store) run(ctx context.Context, sc *redis.Script, key string, args ...any) (status, payload string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	id, err := s.opID()
	if err != nil {
		return "", "", err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	argv := append([]any{s.opts.OpTTL.Milliseconds()}, args...)
	res, err := s.eval(ctx, sc, []string{op(key, id), key}, argv...).Slice()
	if err != nil {
		return "", "", err
	}
	if len(res) != 2 {
		return "", "", fmt.Errorf("script reply has %d elements, want 2", len(res))
	}
	status, _ = res[0].(string)
	payload, _ = res[1].(string)
	return status, payload, nil
}
