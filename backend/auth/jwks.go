package auth

import (
	"net/http"
	"strconv"
)

// JWKSPath is where JWKSHandler is meant to be mounted.
const JWKSPath = "/.well-known/jwks.json"

// jwksMaxAge is how long clients may cache the key set, in seconds. It is
// short so that a verifier holding a cached copy learns of a rotated-in key
// soon, and stops trusting a retired key soon after Retire.
const jwksMaxAge = 300

// JWKSHandler serves the JSON Web Key Set of the live keys (GET and HEAD):
// public keys only, each with kid, alg ES256 and use sig, newest first, with
// a short Cache-Control max-age. Other methods get 405.
func (t *Tokens) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := t.keys.ring.Load().jwks
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
}
