// Package loadtest is the harness of the MTM load test: it measures RPCs
// made through the generated Connect clients (an interceptor times every
// call into an HDR histogram per procedure), runs closed-loop load phases
// bounded in time and count, prints a progress line while they run, and
// turns the measurements into a Report (terminal table and JSON) in which
// every figure is also a ratio to the empty-RPC baseline and to the floor
// (a bare connect-go handler in its own process, procs.ServeBare) measured
// in the same run. The same bare server replays mtmd's own answers to the
// PML read and the app open (the answer floors, scenario.RecordAnswers),
// which those phases' targets are judged against.
//
// The subpackages hold the rest: seed fills a store with a realistic
// population through the store contract, procs starts the servers under
// test (mtmd, redis-server, the bare floor) as child processes on loopback and reads their
// CPU time, and scenario holds the user journeys (app open, dose
// confirmations, questions and replies, the 8:00 reminder burst).
// cmd/mtmload is the command.
package loadtest
