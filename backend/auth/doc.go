// Package auth is who-is-calling for the MTM backend: it issues and verifies
// short-lived access tokens (ES256 JWTs with rotating keys published as a
// JWKS), hashes and checks passwords (argon2id), mints the opaque secrets the
// store keeps only as hashes (refresh tokens, activation codes), and puts the
// verified Principal into the request context through a Connect interceptor.
//
// The package never logs: tokens, passwords and codes do not leave it except
// as return values to the caller.
package auth
