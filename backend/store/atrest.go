package store

import (
	"context"
	"strings"
)

// AtRest is what a store does to keep PHI sealed at rest (store/seal):
// lookups by clear values through blind indexes, a resumable
// re-encryption pass, and erasing a patient for good.
//
// Every backend seals, under the patient's own data key, every value that
// names a patient or a medicine (records, threads and messages, reminders
// and schedules, self-reports, the audit window, the change log), and
// under the store's directory key the accounts and invites; keys and
// indexes hold ids, times and blind indexes only, never a clear e-mail,
// name, date of birth, code hash or medicine. Values written before
// sealing was added are read as they are and sealed on their next write
// or by Reencrypt.
type AtRest interface {
	// FindPatients returns a pharmacy's patients whose family name
	// (compared case- and space-insensitively) and birth date are exactly
	// these, through a blind index: ordered by id, at most 100.
	FindPatients(ctx context.Context, pharmacyID, familyName string, birthDate Date) ([]Patient, error)

	// Reencrypt continues the re-encryption pass at cursor ("" to start)
	// over up to opts.Limit patients (in id order, across pharmacies),
	// then over the directory once the patients are done. For each
	// patient it rewraps the data key under the key-encryption key's
	// current version, adds a new key version first when
	// opts.RotateDataKeys is set, reseals every value of theirs that is
	// not sealed under the current version (or not sealed at all), and
	// then retires the versions nothing uses any more. It is safe under
	// live traffic: a value written meanwhile is sealed by its writer
	// under the current version, and no write is lost. Next is "" when
	// the pass is complete; a caller resumes an interrupted pass with
	// the last Next it saw.
	Reencrypt(ctx context.Context, cursor string, opts ReencryptOptions) (ReencryptPage, error)

	// DeletePatient erases a patient for good: their wrapped data key
	// first (so any copy of their ciphertext, in a backup, an AOF or a
	// replica, can no longer be opened: crypto-shredding), then every
	// record, message, reminder, code, grant, index and log entry that
	// names them, including their entries in caregivers' accounts.
	// ErrNotFound if there is no such patient. Deleting is idempotent in
	// effect: after a partial failure, calling it again finishes the job
	// (and answers ErrNotFound only once nothing is left).
	DeletePatient(ctx context.Context, id string) (Erased, error)
}

// ReencryptOptions tune one step of the re-encryption pass.
type ReencryptOptions struct {
	// Limit is the number of patients per step (default 100).
	Limit int
	// RotateDataKeys adds a new version to each data key the pass
	// reaches before resealing (a key rotation); otherwise the pass only
	// seals what is not sealed or not current, and rewraps keys.
	RotateDataKeys bool
}

// ReencryptPage is the outcome of one step of the pass.
type ReencryptPage struct {
	// Next is the cursor to continue from; "" when the pass is done.
	Next string
	// Patients is how many patients this step went through; Resealed how
	// many values it rewrote; Retired how many key versions it dropped.
	Patients, Resealed, Retired int
}

// Erased says what DeletePatient removed, by kind, for the audit trail
// and the operator (counts only, never contents).
type Erased struct {
	PatientID  string
	PharmacyID string
	// Counts of removed values by kind ("threads", "messages",
	// "reminders", "grants", …).
	Counts map[string]int
}

// FoldName is the form in which FindPatients compares family names: lower
// case, no leading or trailing space, single inner spaces. Both stores
// blind-index this form, so "Van  der Berg" finds "van der berg".
func FoldName(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
