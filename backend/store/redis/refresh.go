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

// CreateRefreshToken stores the first token of a new family;
// store.ErrAlreadyExists if the hash or the family already exists.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	const opName = "redisstore.CreateRefreshToken"
	rec, err := s.encode(tokenToWire(t))
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	ttl := s.gcTTL(t.ExpiresAt).Milliseconds()
	if err := s.createRecord(ctx, opName, s.k.token(t.Hash), []byte(tokenIndex(t)), ttl); err != nil {
		return err
	}
	status, _, err := s.run(ctx, s.scripts.createFamily, s.k.family(t.FamilyID), t.Hash, rec, t.ExpiresAt.UnixMilli(), ttl)
	switch {
	case err != nil:
		return s.fail(opName, err)
	case status == stExists:
		s.dropTokenIndex(ctx, t)
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	case status != stOK:
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	return nil
}

// RotateRefreshToken spends the token oldHash and stores r.Next in its
// family (inheriting FamilyID, Subject and Role), atomically in one script
// with repeat and reuse detection, as store.Sessions documents: a repeat
// within the grace returns the stored successor; presenting a spent token
// otherwise revokes the family and returns store.ErrTokenReused; a token
// of a revoked family gets store.ErrSessionRevoked; store.ErrNotFound when
// the token is unknown or expired at now.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, r store.Rotation, now time.Time) (store.Rotated, error) {
	const opName = "redisstore.RotateRefreshToken"
	idx, err := s.readTokenIndex(ctx, oldHash)
	if err != nil {
		return store.Rotated{}, s.fail(opName, err)
	}
	family := idx.family
	if !now.Before(idx.expires) {
		return store.Rotated{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	// Subject and role are the same for every token of a family. The index
	// entry carries them; one written before it did is answered by the
	// family's current token (read outside the script, which decides
	// whether oldHash is still the one to spend).
	sw := tokenWire{Subject: idx.subject, Role: idx.role}
	if !idx.whole {
		spentRaw, err := s.currentToken(ctx, family)
		if err != nil {
			return store.Rotated{}, s.fail(opName, err)
		}
		if spentRaw != nil {
			if err := s.decode(spentRaw, &sw); err != nil {
				return store.Rotated{}, fmt.Errorf("%s: %w", opName, err)
			}
		}
	}
	next := r.Next
	next.FamilyID, next.Subject, next.Role = family, sw.Subject, store.Role(sw.Role)
	rec, err := s.encode(tokenToWire(next))
	if err != nil {
		return store.Rotated{}, fmt.Errorf("%s: %w", opName, err)
	}
	ttl := s.gcTTL(next.ExpiresAt).Milliseconds()
	if err := s.createRecord(ctx, opName, s.k.token(next.Hash), []byte(tokenIndex(next)), ttl); err != nil {
		return store.Rotated{}, err
	}
	status, payload, err := s.run(ctx, s.scripts.rotate, s.k.family(family), oldHash, next.Hash, rec,
		next.ExpiresAt.UnixMilli(), ttl, r.Sealed, now.Add(r.Grace).UnixMilli(), now.UnixMilli())
	if err != nil {
		return store.Rotated{}, s.fail(opName, err)
	}
	switch status {
	case stOK:
		if err := s.decode([]byte(payload), &sw); err != nil {
			return store.Rotated{}, fmt.Errorf("%s: %w", opName, err)
		}
		return store.Rotated{Spent: sw.toStore(), Next: next, Sealed: r.Sealed}, nil
	case stRepeat:
		s.dropTokenIndex(ctx, next)
		parts, ok := unpackParts(payload, 3)
		if !ok {
			return store.Rotated{}, fmt.Errorf("%s: %w", opName, errFormat)
		}
		var spent, live tokenWire
		if err := s.decode([]byte(parts[0]), &spent); err != nil {
			return store.Rotated{}, fmt.Errorf("%s: %w", opName, err)
		}
		if err := s.decode([]byte(parts[1]), &live); err != nil {
			return store.Rotated{}, fmt.Errorf("%s: %w", opName, err)
		}
		return store.Rotated{Spent: spent.toStore(), Next: live.toStore(), Sealed: []byte(parts[2]), Repeat: true}, nil
	case stNotFound:
		s.dropTokenIndex(ctx, next)
		return store.Rotated{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	case stRevoked:
		s.dropTokenIndex(ctx, next)
		return store.Rotated{}, fmt.Errorf("%s: %w", opName, store.ErrSessionRevoked)
	case stReused:
		s.dropTokenIndex(ctx, next)
		return store.Rotated{}, fmt.Errorf("%s: %w", opName, store.ErrTokenReused)
	default:
		return store.Rotated{}, fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
}

// unpackParts splits a script payload of n "<length>:<bytes>" parts.
func unpackParts(payload string, n int) ([]string, bool) {
	parts := make([]string, 0, n)
	for range n {
		lenText, rest, ok := strings.Cut(payload, ":")
		l, err := strconv.Atoi(lenText)
		if !ok || err != nil || l < 0 || l > len(rest) {
			return nil, false
		}
		parts = append(parts, rest[:l])
		payload = rest[l:]
	}
	return parts, payload == ""
}

// RevokeRefreshFamily revokes every token of the family holding tokenHash;
// store.ErrNotFound if the hash is unknown.
func (s *Store) RevokeRefreshFamily(ctx context.Context, tokenHash string) error {
	const opName = "redisstore.RevokeRefreshFamily"
	idx, err := s.readTokenIndex(ctx, tokenHash)
	if err != nil {
		return s.fail(opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.scripts.revoke.Run(cctx, s.rdb, []string{s.k.family(idx.family)}).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// tokenIndex is the value of a token's index entry:
// "<expiry µs>\n<family>\n<role>\n<subject>". Entries written before the
// role and subject were added hold only the first two lines.
func tokenIndex(t store.RefreshToken) string {
	return strconv.FormatInt(t.ExpiresAt.UnixMicro(), 10) + "\n" + t.FamilyID + "\n" + string(t.Role) + "\n" + t.Subject
}

// indexEntry is a token's index entry, read.
type indexEntry struct {
	family  string
	expires time.Time
	// whole: the entry carries the family's subject and role (a rotation
	// then needs no read of the family's current token).
	whole         bool
	subject, role string
}

// readTokenIndex reads a token's index entry.
func (s *Store) readTokenIndex(ctx context.Context, hash string) (indexEntry, error) {
	b, err := s.get(ctx, s.k.token(hash))
	if err != nil {
		return indexEntry{}, err
	}
	lines := strings.SplitN(string(b), "\n", 4)
	if len(lines) != 2 && len(lines) != 4 {
		return indexEntry{}, errFormat
	}
	us, err := strconv.ParseInt(lines[0], 10, 64)
	if err != nil {
		return indexEntry{}, errFormat
	}
	e := indexEntry{family: lines[1], expires: time.UnixMicro(us)}
	if len(lines) == 4 {
		e.whole, e.role, e.subject = true, lines[2], lines[3]
	}
	return e, nil
}

// currentToken returns the family's current token record, or nil when the
// family is revoked or gone.
func (s *Store) currentToken(ctx context.Context, family string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	v, err := s.rdb.HGet(ctx, s.k.family(family), "r").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, err
}

// dropTokenIndex deletes, best effort, the index entry of a token that
// never reached its family.
func (s *Store) dropTokenIndex(ctx context.Context, t store.RefreshToken) {
	_, _, _ = s.run(ctx, s.scripts.delIfEqual, s.k.token(t.Hash), tokenIndex(t))
}
