package redisstore

import "fmt"

// PatientFormats names the record formats a Store can write patients in,
// oldest first, for tests and benchmarks that compare them in one run.
func PatientFormats() []string { return []string{"v1", "zstd"} }

// WritePatientsAs makes s write new patient records in the named format
// (one of PatientFormats), as an older or newer release would.
func WritePatientsAs(s *Store, format string) {
	f, ok := map[string]byte{"v1": formatV1, "zstd": formatZstd}[format]
	if !ok {
		panic(fmt.Sprintf("unknown record format %q", format))
	}
	s.patientFormat = f
}

// SetSealedHook makes s run f between sealing a thread or an activation
// code and storing it (where a concurrent rotation would strand it).
func SetSealedHook(s *Store, f func(patientID string)) { s.testHookSealed = f }
