package redisstore

import (
	"strconv"
	"strings"
	"time"
)

// keys names every Redis key the store uses; see the package comment.
type keys struct{ prefix string }

// escaper keeps ids from closing a hash tag early.
var escaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// tag returns "<prefix>:{<kind>:<escaped id>}".
func (k keys) tag(kind, id string) string {
	return k.prefix + ":{" + kind + ":" + escaper.Replace(id) + "}"
}

func (k keys) pharmacy(id string) string         { return k.tag("ph", id) }
func (k keys) pharmacyPatients(id string) string { return k.tag("ph", id) + ":patients" }
func (k keys) patient(id string) string          { return k.tag("p", id) }
func (k keys) patientCode(id string) string      { return k.tag("p", id) + ":code" }
func (k keys) code(hash string) string           { return k.tag("c", hash) }
func (k keys) account(id string) string          { return k.tag("a", id) }
func (k keys) email(normalized string) string    { return k.tag("e", normalized) }
func (k keys) family(id string) string           { return k.tag("f", id) }
func (k keys) token(hash string) string          { return k.tag("t", hash) }
func (k keys) invite(hash string) string         { return k.tag("i", hash) }
func (k keys) consoleSession(hash string) string { return k.tag("cs", hash) }
func (k keys) audit(patientID string) string     { return k.tag("p", patientID) + ":audit" }
func (k keys) auditRefused(patientID string) string {
	return k.tag("p", patientID) + ":audit:refused"
}
func (k keys) signingKeys() string { return k.prefix + ":{sk}" }

// window is the counter of the fixed window starting at start.
func (k keys) window(key string, start time.Time) string {
	return k.tag("rl", key) + ":" + strconv.FormatInt(start.UnixMilli(), 10)
}

// op is the reply slot of one idempotent write, in the slot of the key
// (a key returned by one of the methods above) it writes.
func op(key, id string) string {
	if i := strings.IndexByte(key, '}'); i >= 0 {
		key = key[:i+1]
	}
	return key + ":op:" + id
}
