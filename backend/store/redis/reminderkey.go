package redisstore

import "strings"

// Members of the due-time index and of the sent sets are Reminder.Key
// values packed to about two thirds of their length (a scheduled reminder
// is one such member, and the 8:00 burst holds one per patient): when every
// character is one of memberAlphabet (true of keys of ids from auth.NewID),
// each three characters become two bytes, after a first byte 0xFD, 0xFE or
// 0xFF saying how many padding characters end the last triple. Any other
// key is stored as it is, behind a 0xFC byte if it begins with a byte of
// 0xFC or more (never the case in UTF-8). The encoding is a function of
// the key, so members compare equal exactly when keys do.
const memberAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz._|-"

const (
	memberRaw    = 0xFC
	memberPacked = 0xFD // + padding characters (0..2)
)

var memberIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(memberAlphabet) {
		t[memberAlphabet[i]] = int8(i)
	}
	return t
}()

// packMember returns the index member of a reminder key.
func packMember(key string) string {
	for i := range len(key) {
		if memberIndex[key[i]] < 0 {
			if key != "" && key[0] >= memberRaw {
				return "\xfc" + key
			}
			return key
		}
	}
	pad := (3 - len(key)%3) % 3
	out := make([]byte, 1, 1+2*(len(key)+pad)/3)
	out[0] = byte(memberPacked + pad)
	const n = len(memberAlphabet)
	for i := 0; i < len(key); i += 3 {
		v := 0
		for j := i; j < i+3; j++ {
			d := 0
			if j < len(key) {
				d = int(memberIndex[key[j]])
			}
			v = v*n + d
		}
		out = append(out, byte(v>>8), byte(v))
	}
	return string(out)
}

// unpackMember is the inverse of packMember.
func unpackMember(m string) string {
	if m == "" || m[0] < memberRaw {
		return m
	}
	if m[0] == memberRaw {
		return m[1:]
	}
	pad := int(m[0] - memberPacked)
	const n = len(memberAlphabet)
	var b strings.Builder
	b.Grow(3 * (len(m) - 1) / 2)
	for i := 1; i+1 < len(m); i += 2 {
		v := int(m[i])<<8 | int(m[i+1])
		b.WriteByte(memberAlphabet[v/(n*n)%n])
		b.WriteByte(memberAlphabet[v/n%n])
		b.WriteByte(memberAlphabet[v%n])
	}
	s := b.String()
	return s[:max(0, len(s)-pad)]
}
