//go:build race

package api_test

// raceEnabled is true when the tests run under the race detector, which
// makes decoding a 1 MiB request tens of times slower.
const raceEnabled = true
