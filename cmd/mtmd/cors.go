package main

import (
	"net/http"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/mtmapp/mtm/backend/telemetry"
)

// corsMaxAge is how long, in seconds, a browser may cache a preflight.
const corsMaxAge = 2 * 60 * 60

// withCORS lets browsers on origins call h with the Connect, gRPC-Web and
// gRPC protocols: it answers preflights (OPTIONS with Origin and
// Access-Control-Request-Method) itself and adds CORS headers to the
// answers of allowed origins. A disallowed origin gets no CORS headers, so
// the browser withholds the answer from its script. Calls carry their
// access token in the Authorization header, never in cookies, so
// credentials are not allowed. No origins: h unchanged.
func withCORS(origins []string, h http.Handler) http.Handler {
	if len(origins) == 0 {
		return h
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", telemetry.RequestIDHeader),
		// The gRPC status headers, Retry-After (sign-in throttles and
		// refusal budgets) and the request id for support.
		ExposedHeaders: append(connectcors.ExposedHeaders(), "Retry-After", telemetry.RequestIDHeader),
		MaxAge:         corsMaxAge,
	})
	return c.Handler(h)
}
