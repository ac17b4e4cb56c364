package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// The first byte of every record written by this package says its layout.
// A new layout gets a new byte; readers refuse bytes they do not know, and
// keep reading every byte ever written.
const (
	// formatV1: CBOR; versioned records start with the 8-byte version.
	formatV1 byte = 1
	// formatZstd: like formatV1, but what follows the header is a zstd
	// frame (github.com/klauspost/compress/zstd, no dictionary) of the CBOR.
	// Only patient records use it so far.
	formatZstd byte = 2
)

// currentPatientFormat is the format new patient records are written in:
// a 20-medicine record is about 10 KB of CBOR, the bulk of what Redis holds,
// and zstd takes it to about 3-4 KB (TestMemoryPerPatient) for some 20 µs
// of decompression next to the CBOR decoding (BenchmarkPatientCodec).
const currentPatientFormat = formatZstd

// versionedHeaderLen is the format byte plus the 8-byte record version
// that versioned records (patients, accounts, threads) start with. The
// header is never compressed: the compare-and-set scripts read it.
const versionedHeaderLen = 9

// maxRecordLen bounds what a compressed record may expand to, so a damaged
// record cannot make a reader allocate without limit.
const maxRecordLen = 16 << 20

// newCompressors returns the zstd encoder and decoder a Store shares
// between goroutines; it uses only EncodeAll and DecodeAll, which are safe
// for concurrent use and start no goroutines.
func newCompressors() (*zstd.Encoder, *zstd.Decoder, error) {
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(0))
	if err != nil {
		return nil, nil, err
	}
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxRecordLen))
	if err != nil {
		return nil, nil, err
	}
	return zenc, zdec, nil
}

// errFormat means a stored record could not be decoded.
var errFormat = errors.New("unknown or damaged record format")

// encode returns formatV1 followed by the CBOR of v.
func (s *Store) encode(v any) ([]byte, error) {
	b, err := s.enc.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{formatV1}, b...), nil
}

// decode reads a record written by encode into v.
func (s *Store) decode(b []byte, v any) error {
	if len(b) < 1 || b[0] != formatV1 {
		return errFormat
	}
	if err := s.dec.Unmarshal(b[1:], v); err != nil {
		return fmt.Errorf("%w: %w", errFormat, err)
	}
	return nil
}

// versionHeader is what the compare-and-set script compares, for records
// written by encodeVersioned.
func versionHeader(version int64) []byte {
	return header(formatV1, version)
}

// header returns the versioned-record header of the given format.
func header(format byte, version int64) []byte {
	h := make([]byte, versionedHeaderLen)
	h[0] = format
	binary.BigEndian.PutUint64(h[1:], uint64(version))
	return h
}

// encodeVersioned returns the header for version followed by the CBOR of v.
func (s *Store) encodeVersioned(version int64, v any) ([]byte, error) {
	b, err := s.enc.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(versionHeader(version), b...), nil
}

// encodeCompressed returns the header for version in format (formatV1 or
// formatZstd) followed by the CBOR of v, compressed as the format says.
func (s *Store) encodeCompressed(format byte, version int64, v any) ([]byte, error) {
	b, err := s.enc.Marshal(v)
	if err != nil {
		return nil, err
	}
	h := header(format, version)
	switch format {
	case formatV1:
		return append(h, b...), nil
	case formatZstd:
		return s.zenc.EncodeAll(b, h), nil
	}
	return nil, fmt.Errorf("no encoder for record format %d", format)
}

// decodeVersioned reads a versioned record of any known format into v and
// returns its version.
func (s *Store) decodeVersioned(b []byte, v any) (int64, error) {
	if len(b) < versionedHeaderLen {
		return 0, errFormat
	}
	body := b[versionedHeaderLen:]
	switch b[0] {
	case formatV1:
	case formatZstd:
		var err error
		if body, err = s.zdec.DecodeAll(body, nil); err != nil {
			return 0, fmt.Errorf("%w: %w", errFormat, err)
		}
	default:
		return 0, errFormat
	}
	if err := s.dec.Unmarshal(body, v); err != nil {
		return 0, fmt.Errorf("%w: %w", errFormat, err)
	}
	return int64(binary.BigEndian.Uint64(b[1:versionedHeaderLen])), nil
}

// encodePatient writes patients in s.patientFormat (currentPatientFormat
// except in tests that write older formats).
func (s *Store) encodePatient(p store.Patient) ([]byte, error) {
	return s.encodeCompressed(s.patientFormat, p.Version, patientToWire(p))
}

func (s *Store) decodePatient(b []byte) (store.Patient, error) {
	var w patientWire
	version, err := s.decodeVersioned(b, &w)
	if err != nil {
		return store.Patient{}, err
	}
	p := w.toStore()
	p.Version = version
	return p, nil
}

// sealPatient is encodePatient sealed under the patient's data key (dk
// nil: unsealed, NoSeal).
func (s *Store) sealPatient(dk *seal.DataKey, p store.Patient) ([]byte, error) {
	rec, err := s.encodePatient(p)
	if err != nil {
		return nil, err
	}
	return sealVersioned(dk, kindPatient, p.ID, rec, nil)
}

// openPatient decodes a stored patient record of any format, sealed or
// not (see sealing.go); id is the patient's, which the ciphertext binds.
// (openPatientCached, in patient.go, goes through the record cache.)
func (s *Store) openPatient(dk *seal.DataKey, id string, b []byte) (store.Patient, error) {
	raw, err := openVersioned(dk, kindPatient, id, versionedHeaderLen, b)
	if err != nil {
		return store.Patient{}, err
	}
	return s.decodePatient(raw)
}

func (s *Store) encodeAccount(a store.Account) ([]byte, error) {
	return s.encodeVersioned(a.Version, accountToWire(a))
}

func (s *Store) decodeAccount(b []byte) (store.Account, error) {
	var w accountWire
	version, err := s.decodeVersioned(b, &w)
	if err != nil {
		return store.Account{}, err
	}
	a := w.toStore()
	a.Version = version
	return a, nil
}

// Times travel as Unix nanoseconds (0 for the zero time) and come back in UTC.
func tEnc(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func tDec(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Dates travel as YYYYMMDD (0 for the zero date).
func dEnc(d store.Date) int64 {
	return int64(d.Year)*10000 + int64(d.Month)*100 + int64(d.Day)
}

func dDec(n int64) store.Date {
	if n == 0 {
		return store.Date{}
	}
	return store.Date{Year: int(n / 10000), Month: time.Month(n / 100 % 100), Day: int(n % 100)}
}

// mapSlice converts every element; nil stays nil.
func mapSlice[A, B any](in []A, f func(A) B) []B {
	if len(in) == 0 {
		return nil
	}
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}

// The wire types below fix the integer key of every field. Never reuse or
// renumber a key: add new fields with new numbers.

type patientWire struct {
	ID                string           `cbor:"1,keyasint,omitempty"`
	PharmacyID        string           `cbor:"2,keyasint,omitempty"`
	GivenName         string           `cbor:"3,keyasint,omitempty"`
	FamilyName        string           `cbor:"4,keyasint,omitempty"`
	DateOfBirth       int64            `cbor:"5,keyasint,omitempty"`
	TimeZone          string           `cbor:"6,keyasint,omitempty"`
	QuietStart        int              `cbor:"7,keyasint,omitempty"`
	QuietEnd          int              `cbor:"8,keyasint,omitempty"`
	PushNamesMedicine bool             `cbor:"9,keyasint,omitempty"`
	Medications       []medicationWire `cbor:"10,keyasint,omitempty"`
	Allergies         []allergyWire    `cbor:"11,keyasint,omitempty"`
	OtherInformation  string           `cbor:"12,keyasint,omitempty"`
	Fills             []fillWire       `cbor:"13,keyasint,omitempty"`
	ActionItems       []actionItemWire `cbor:"14,keyasint,omitempty"`
	FollowUpPlan      string           `cbor:"15,keyasint,omitempty"`
	Questions         string           `cbor:"16,keyasint,omitempty"`
	ActivatedAt       int64            `cbor:"17,keyasint,omitempty"`
	CreatedAt         int64            `cbor:"18,keyasint,omitempty"`
	UpdatedAt         int64            `cbor:"19,keyasint,omitempty"`
	Grants            []grantWire      `cbor:"20,keyasint,omitempty"`
	Devices           []deviceWire     `cbor:"21,keyasint,omitempty"`
	DoseSchedules     []scheduleWire   `cbor:"22,keyasint,omitempty"`
	FollowUps         []followUpWire   `cbor:"23,keyasint,omitempty"`
	Reviews           []reviewWire     `cbor:"24,keyasint,omitempty"`
	SelfReports       []selfReportWire `cbor:"25,keyasint,omitempty"`
	PreferredLanguage string           `cbor:"26,keyasint,omitempty"`
	Address           string           `cbor:"27,keyasint,omitempty"`
	Phone             string           `cbor:"28,keyasint,omitempty"`
	EmergencyContact  contactWire      `cbor:"29,keyasint,omitempty"`
	PrimaryCare       contactWire      `cbor:"30,keyasint,omitempty"`
	ProfileVersion    int64            `cbor:"31,keyasint,omitempty"`
	// Keys from 60 on: the clinical work lists and conditions.
	Conditions []conditionWire `cbor:"60,keyasint,omitempty"`
	Worklist   worklistWire    `cbor:"61,keyasint,omitempty"`
}

type worklistWire struct {
	CMRDue   int64 `cbor:"1,keyasint,omitempty"`
	BelowPDC int64 `cbor:"2,keyasint,omitempty"`
	FollowUp int64 `cbor:"3,keyasint,omitempty"`
}

type conditionWire struct {
	ID         string `cbor:"1,keyasint,omitempty"`
	Kind       string `cbor:"2,keyasint,omitempty"`
	From       int64  `cbor:"3,keyasint,omitempty"`
	Through    int64  `cbor:"4,keyasint,omitempty"`
	Note       string `cbor:"5,keyasint,omitempty"`
	RecordedBy string `cbor:"6,keyasint,omitempty"`
	RecordedAt int64  `cbor:"7,keyasint,omitempty"`
}

func conditionToWire(c store.Condition) conditionWire {
	return conditionWire{ID: c.ID, Kind: c.Kind, From: dEnc(c.From), Through: dEnc(c.Through), Note: c.Note, RecordedBy: c.RecordedBy, RecordedAt: tEnc(c.RecordedAt)}
}

func (w conditionWire) toStore() store.Condition {
	return store.Condition{ID: w.ID, Kind: w.Kind, From: dDec(w.From), Through: dDec(w.Through), Note: w.Note, RecordedBy: w.RecordedBy, RecordedAt: tDec(w.RecordedAt)}
}

type medicationWire struct {
	ID              string       `cbor:"1,keyasint,omitempty"`
	Name            string       `cbor:"2,keyasint,omitempty"`
	Strength        string       `cbor:"3,keyasint,omitempty"`
	RxCUI           string       `cbor:"4,keyasint,omitempty"`
	HowIUseIt       string       `cbor:"5,keyasint,omitempty"`
	WhyIUseIt       string       `cbor:"6,keyasint,omitempty"`
	Prescriber      string       `cbor:"7,keyasint,omitempty"`
	StartedOn       int64        `cbor:"8,keyasint,omitempty"`
	StoppedOn       int64        `cbor:"9,keyasint,omitempty"`
	WhyStopped      string       `cbor:"10,keyasint,omitempty"`
	UpdatedAt       int64        `cbor:"11,keyasint,omitempty"`
	UpdatedBy       string       `cbor:"12,keyasint,omitempty"`
	Version         int64        `cbor:"13,keyasint,omitempty"`
	History         []changeWire `cbor:"14,keyasint,omitempty"`
	PrescriberPhone string       `cbor:"15,keyasint,omitempty"`
}

type changeWire struct {
	At     int64  `cbor:"1,keyasint,omitempty"`
	By     string `cbor:"2,keyasint,omitempty"`
	Reason string `cbor:"3,keyasint,omitempty"`
}

type allergyWire struct {
	ID         string `cbor:"1,keyasint,omitempty"`
	Kind       string `cbor:"2,keyasint,omitempty"`
	Substance  string `cbor:"3,keyasint,omitempty"`
	Reaction   string `cbor:"4,keyasint,omitempty"`
	RecordedAt int64  `cbor:"5,keyasint,omitempty"`
}

type fillWire struct {
	ID           string `cbor:"1,keyasint,omitempty"`
	MedicationID string `cbor:"2,keyasint,omitempty"`
	FilledOn     int64  `cbor:"3,keyasint,omitempty"`
	DaysSupply   int    `cbor:"4,keyasint,omitempty"`
	RecordedAt   int64  `cbor:"5,keyasint,omitempty"`
}

type actionItemWire struct {
	ID                string         `cbor:"1,keyasint,omitempty"`
	WhatWeTalkedAbout string         `cbor:"2,keyasint,omitempty"`
	WhatINeedToDo     string         `cbor:"3,keyasint,omitempty"`
	Progress          []progressWire `cbor:"4,keyasint,omitempty"`
	CreatedAt         int64          `cbor:"5,keyasint,omitempty"`
	UpdatedAt         int64          `cbor:"6,keyasint,omitempty"`
	Version           int64          `cbor:"7,keyasint,omitempty"`
}

type progressWire struct {
	WhatIDid   string `cbor:"1,keyasint,omitempty"`
	DoneOn     int64  `cbor:"2,keyasint,omitempty"`
	RecordedBy string `cbor:"3,keyasint,omitempty"`
	RecordedAt int64  `cbor:"4,keyasint,omitempty"`
}

func patientToWire(p store.Patient) patientWire {
	return patientWire{
		ID: p.ID, PharmacyID: p.PharmacyID, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DateOfBirth: dEnc(p.DateOfBirth), TimeZone: p.TimeZone,
		QuietStart: p.QuietHours.StartMinute, QuietEnd: p.QuietHours.EndMinute,
		PushNamesMedicine: p.PushNamesMedicine, PreferredLanguage: p.PreferredLanguage,
		Address: p.Address, Phone: p.Phone, EmergencyContact: contactToWire(p.EmergencyContact), PrimaryCare: contactToWire(p.PrimaryCare),
		Medications: mapSlice(p.Medications, func(m store.Medication) medicationWire {
			return medicationWire{
				ID: m.ID, Name: m.Name, Strength: m.Strength, RxCUI: m.RxCUI, HowIUseIt: m.HowIUseIt,
				WhyIUseIt: m.WhyIUseIt, Prescriber: m.Prescriber, PrescriberPhone: m.PrescriberPhone, StartedOn: dEnc(m.StartedOn),
				StoppedOn: dEnc(m.StoppedOn), WhyStopped: m.WhyStopped, UpdatedAt: tEnc(m.UpdatedAt),
				UpdatedBy: m.UpdatedBy, Version: m.Version,
				History: mapSlice(m.History, func(c store.MedicationChange) changeWire {
					return changeWire{At: tEnc(c.At), By: c.By, Reason: c.Reason}
				}),
			}
		}),
		Allergies: mapSlice(p.Allergies, func(a store.Allergy) allergyWire {
			return allergyWire{ID: a.ID, Kind: string(a.Kind), Substance: a.Substance, Reaction: a.Reaction, RecordedAt: tEnc(a.RecordedAt)}
		}),
		OtherInformation: p.OtherInformation,
		Fills: mapSlice(p.Fills, func(f store.Fill) fillWire {
			return fillWire{ID: f.ID, MedicationID: f.MedicationID, FilledOn: dEnc(f.FilledOn), DaysSupply: f.DaysSupply, RecordedAt: tEnc(f.RecordedAt)}
		}),
		ActionItems: mapSlice(p.ActionItems, func(a store.ActionItem) actionItemWire {
			return actionItemWire{
				ID: a.ID, WhatWeTalkedAbout: a.WhatWeTalkedAbout, WhatINeedToDo: a.WhatINeedToDo,
				Progress: mapSlice(a.Progress, func(g store.Progress) progressWire {
					return progressWire{WhatIDid: g.WhatIDid, DoneOn: dEnc(g.DoneOn), RecordedBy: g.RecordedBy, RecordedAt: tEnc(g.RecordedAt)}
				}),
				CreatedAt: tEnc(a.CreatedAt), UpdatedAt: tEnc(a.UpdatedAt), Version: a.Version,
			}
		}),
		FollowUpPlan: p.FollowUpPlan, Questions: p.Questions,
		ActivatedAt: tEnc(p.ActivatedAt), CreatedAt: tEnc(p.CreatedAt), UpdatedAt: tEnc(p.UpdatedAt),
		Grants:         mapSlice(p.Grants, grantToWire),
		Devices:        mapSlice(p.Devices, deviceToWire),
		DoseSchedules:  mapSlice(p.DoseSchedules, scheduleToWire),
		FollowUps:      mapSlice(p.FollowUps, followUpToWire),
		Reviews:        mapSlice(p.Reviews, reviewToWire),
		SelfReports:    mapSlice(p.SelfReports, selfReportToWire),
		Conditions:     mapSlice(p.Conditions, conditionToWire),
		Worklist:       worklistWire{CMRDue: dEnc(p.Worklist.CMRDue), BelowPDC: dEnc(p.Worklist.BelowPDC), FollowUp: dEnc(p.Worklist.FollowUp)},
		ProfileVersion: p.ProfileVersion,
	}
}

func (w patientWire) toStore() store.Patient {
	return store.Patient{
		ID: w.ID, PharmacyID: w.PharmacyID, GivenName: w.GivenName, FamilyName: w.FamilyName,
		DateOfBirth: dDec(w.DateOfBirth), TimeZone: w.TimeZone,
		QuietHours:        store.QuietHours{StartMinute: w.QuietStart, EndMinute: w.QuietEnd},
		PushNamesMedicine: w.PushNamesMedicine, PreferredLanguage: w.PreferredLanguage,
		Address: w.Address, Phone: w.Phone, EmergencyContact: w.EmergencyContact.toStore(), PrimaryCare: w.PrimaryCare.toStore(),
		Medications: mapSlice(w.Medications, func(m medicationWire) store.Medication {
			return store.Medication{
				ID: m.ID, Name: m.Name, Strength: m.Strength, RxCUI: m.RxCUI, HowIUseIt: m.HowIUseIt,
				WhyIUseIt: m.WhyIUseIt, Prescriber: m.Prescriber, PrescriberPhone: m.PrescriberPhone, StartedOn: dDec(m.StartedOn),
				StoppedOn: dDec(m.StoppedOn), WhyStopped: m.WhyStopped, UpdatedAt: tDec(m.UpdatedAt),
				UpdatedBy: m.UpdatedBy, Version: m.Version,
				History: mapSlice(m.History, func(c changeWire) store.MedicationChange {
					return store.MedicationChange{At: tDec(c.At), By: c.By, Reason: c.Reason}
				}),
			}
		}),
		Allergies: mapSlice(w.Allergies, func(a allergyWire) store.Allergy {
			return store.Allergy{ID: a.ID, Kind: store.AllergyKind(a.Kind), Substance: a.Substance, Reaction: a.Reaction, RecordedAt: tDec(a.RecordedAt)}
		}),
		OtherInformation: w.OtherInformation,
		Fills: mapSlice(w.Fills, func(f fillWire) store.Fill {
			return store.Fill{ID: f.ID, MedicationID: f.MedicationID, FilledOn: dDec(f.FilledOn), DaysSupply: f.DaysSupply, RecordedAt: tDec(f.RecordedAt)}
		}),
		ActionItems: mapSlice(w.ActionItems, func(a actionItemWire) store.ActionItem {
			return store.ActionItem{
				ID: a.ID, WhatWeTalkedAbout: a.WhatWeTalkedAbout, WhatINeedToDo: a.WhatINeedToDo,
				Progress: mapSlice(a.Progress, func(g progressWire) store.Progress {
					return store.Progress{WhatIDid: g.WhatIDid, DoneOn: dDec(g.DoneOn), RecordedBy: g.RecordedBy, RecordedAt: tDec(g.RecordedAt)}
				}),
				CreatedAt: tDec(a.CreatedAt), UpdatedAt: tDec(a.UpdatedAt), Version: a.Version,
			}
		}),
		FollowUpPlan: w.FollowUpPlan, Questions: w.Questions,
		ActivatedAt: tDec(w.ActivatedAt), CreatedAt: tDec(w.CreatedAt), UpdatedAt: tDec(w.UpdatedAt),
		Grants:         mapSlice(w.Grants, grantWire.toStore),
		Devices:        mapSlice(w.Devices, deviceWire.toStore),
		DoseSchedules:  mapSlice(w.DoseSchedules, scheduleWire.toStore),
		FollowUps:      mapSlice(w.FollowUps, followUpWire.toStore),
		Reviews:        mapSlice(w.Reviews, reviewWire.toStore),
		SelfReports:    mapSlice(w.SelfReports, selfReportWire.toStore),
		Conditions:     mapSlice(w.Conditions, conditionWire.toStore),
		Worklist:       store.WorklistDates{CMRDue: dDec(w.Worklist.CMRDue), BelowPDC: dDec(w.Worklist.BelowPDC), FollowUp: dDec(w.Worklist.FollowUp)},
		ProfileVersion: w.ProfileVersion,
	}
}

type pharmacyWire struct {
	ID        string `cbor:"1,keyasint,omitempty"`
	Name      string `cbor:"2,keyasint,omitempty"`
	CreatedAt int64  `cbor:"3,keyasint,omitempty"`
	Phone     string `cbor:"4,keyasint,omitempty"`
	TTY       string `cbor:"5,keyasint,omitempty"`
	Hours     string `cbor:"6,keyasint,omitempty"`
	Address   string `cbor:"7,keyasint,omitempty"`
	NPI       string `cbor:"8,keyasint,omitempty"`
	PlanName  string `cbor:"9,keyasint,omitempty"`
	// RequireSecondFactor: see store.Pharmacy.
	RequireSecondFactor bool `cbor:"10,keyasint,omitempty"`
}

type contactWire struct {
	Name         string `cbor:"1,keyasint,omitempty"`
	Relationship string `cbor:"2,keyasint,omitempty"`
	Phone        string `cbor:"3,keyasint,omitempty"`
}

func contactToWire(c store.Contact) contactWire {
	return contactWire{Name: c.Name, Relationship: c.Relationship, Phone: c.Phone}
}

func (w contactWire) toStore() store.Contact {
	return store.Contact{Name: w.Name, Relationship: w.Relationship, Phone: w.Phone}
}

type accountWire struct {
	ID           string `cbor:"1,keyasint,omitempty"`
	Email        string `cbor:"2,keyasint,omitempty"`
	DisplayName  string `cbor:"3,keyasint,omitempty"`
	PasswordHash string `cbor:"4,keyasint,omitempty"`
	Role         string `cbor:"5,keyasint,omitempty"`
	PharmacyID   string `cbor:"6,keyasint,omitempty"`
	CreatedAt    int64  `cbor:"7,keyasint,omitempty"`
	// 8 is reserved: the version travels in the record header.
	Devices      []deviceWire `cbor:"9,keyasint,omitempty"`
	PatientIDs   []string     `cbor:"10,keyasint,omitempty"`
	NPI          string       `cbor:"11,keyasint,omitempty"`
	TOTPSecret   string       `cbor:"12,keyasint,omitempty"`
	TOTPLastStep int64        `cbor:"13,keyasint,omitempty"`
}

type codeWire struct {
	CodeHash  string `cbor:"1,keyasint,omitempty"`
	PatientID string `cbor:"2,keyasint,omitempty"`
	ExpiresAt int64  `cbor:"3,keyasint,omitempty"`
	CreatedAt int64  `cbor:"4,keyasint,omitempty"`
}

type tokenWire struct {
	Hash      string `cbor:"1,keyasint,omitempty"`
	FamilyID  string `cbor:"2,keyasint,omitempty"`
	Subject   string `cbor:"3,keyasint,omitempty"`
	Role      string `cbor:"4,keyasint,omitempty"`
	ExpiresAt int64  `cbor:"5,keyasint,omitempty"`
	CreatedAt int64  `cbor:"6,keyasint,omitempty"`
}

func tokenToWire(t store.RefreshToken) tokenWire {
	return tokenWire{Hash: t.Hash, FamilyID: t.FamilyID, Subject: t.Subject, Role: string(t.Role), ExpiresAt: tEnc(t.ExpiresAt), CreatedAt: tEnc(t.CreatedAt)}
}

func (w tokenWire) toStore() store.RefreshToken {
	return store.RefreshToken{Hash: w.Hash, FamilyID: w.FamilyID, Subject: w.Subject, Role: store.Role(w.Role), ExpiresAt: tDec(w.ExpiresAt), CreatedAt: tDec(w.CreatedAt)}
}

type grantWire struct {
	ID            string   `cbor:"1,keyasint,omitempty"`
	CaregiverID   string   `cbor:"2,keyasint,omitempty"`
	CaregiverName string   `cbor:"3,keyasint,omitempty"`
	Scopes        []string `cbor:"4,keyasint,omitempty"`
	EndsOn        int64    `cbor:"5,keyasint,omitempty"`
	CreatedAt     int64    `cbor:"6,keyasint,omitempty"`
	RevokedAt     int64    `cbor:"7,keyasint,omitempty"`
}

func grantToWire(g store.Grant) grantWire {
	return grantWire{ID: g.ID, CaregiverID: g.CaregiverID, CaregiverName: g.CaregiverName,
		Scopes: scopesToWire(g.Scopes), EndsOn: dEnc(g.EndsOn), CreatedAt: tEnc(g.CreatedAt), RevokedAt: tEnc(g.RevokedAt)}
}

func (w grantWire) toStore() store.Grant {
	return store.Grant{ID: w.ID, CaregiverID: w.CaregiverID, CaregiverName: w.CaregiverName,
		Scopes: scopesFromWire(w.Scopes), EndsOn: dDec(w.EndsOn), CreatedAt: tDec(w.CreatedAt), RevokedAt: tDec(w.RevokedAt)}
}

func scopesToWire(s []store.Scope) []string {
	return mapSlice(s, func(x store.Scope) string { return string(x) })
}

func scopesFromWire(s []string) []store.Scope {
	return mapSlice(s, func(x string) store.Scope { return store.Scope(x) })
}

type deviceWire struct {
	ID           string `cbor:"1,keyasint,omitempty"`
	FCMToken     string `cbor:"2,keyasint,omitempty"`
	Platform     string `cbor:"3,keyasint,omitempty"`
	AppVersion   string `cbor:"4,keyasint,omitempty"`
	Locale       string `cbor:"5,keyasint,omitempty"`
	RegisteredAt int64  `cbor:"6,keyasint,omitempty"`
}

func deviceToWire(d store.Device) deviceWire {
	return deviceWire{ID: d.ID, FCMToken: d.FCMToken, Platform: d.Platform, AppVersion: d.AppVersion, Locale: d.Locale, RegisteredAt: tEnc(d.RegisteredAt)}
}

func (w deviceWire) toStore() store.Device {
	return store.Device{ID: w.ID, FCMToken: w.FCMToken, Platform: w.Platform, AppVersion: w.AppVersion, Locale: w.Locale, RegisteredAt: tDec(w.RegisteredAt)}
}

type scheduleWire struct {
	ID           string `cbor:"1,keyasint,omitempty"`
	MedicationID string `cbor:"2,keyasint,omitempty"`
	TimesOfDay   []int  `cbor:"3,keyasint,omitempty"`
	DaysOfWeek   []int  `cbor:"4,keyasint,omitempty"`
	StartOn      int64  `cbor:"5,keyasint,omitempty"`
	EndOn        int64  `cbor:"6,keyasint,omitempty"`
}

func scheduleToWire(d store.DoseSchedule) scheduleWire {
	return scheduleWire{ID: d.ID, MedicationID: d.MedicationID, TimesOfDay: mapSlice(d.TimesOfDay, func(m int) int { return m }),
		DaysOfWeek: mapSlice(d.DaysOfWeek, func(w time.Weekday) int { return int(w) }), StartOn: dEnc(d.StartOn), EndOn: dEnc(d.EndOn)}
}

func (w scheduleWire) toStore() store.DoseSchedule {
	return store.DoseSchedule{ID: w.ID, MedicationID: w.MedicationID, TimesOfDay: mapSlice(w.TimesOfDay, func(m int) int { return m }),
		DaysOfWeek: mapSlice(w.DaysOfWeek, func(d int) time.Weekday { return time.Weekday(d) }), StartOn: dDec(w.StartOn), EndOn: dDec(w.EndOn)}
}

type followUpWire struct {
	ID           string `cbor:"1,keyasint,omitempty"`
	DueAt        int64  `cbor:"2,keyasint,omitempty"`
	ActionItemID string `cbor:"3,keyasint,omitempty"`
	ReviewID     string `cbor:"4,keyasint,omitempty"`
	CreatedBy    string `cbor:"5,keyasint,omitempty"`
	CreatedAt    int64  `cbor:"6,keyasint,omitempty"`
}

func followUpToWire(f store.FollowUp) followUpWire {
	return followUpWire{ID: f.ID, DueAt: tEnc(f.DueAt), ActionItemID: f.ActionItemID, ReviewID: f.ReviewID, CreatedBy: f.CreatedBy, CreatedAt: tEnc(f.CreatedAt)}
}

func (w followUpWire) toStore() store.FollowUp {
	return store.FollowUp{ID: w.ID, DueAt: tDec(w.DueAt), ActionItemID: w.ActionItemID, ReviewID: w.ReviewID, CreatedBy: w.CreatedBy, CreatedAt: tDec(w.CreatedAt)}
}

type reviewWire struct {
	ID             string             `cbor:"1,keyasint,omitempty"`
	Kind           string             `cbor:"2,keyasint,omitempty"`
	DeliveryMethod string             `cbor:"3,keyasint,omitempty"`
	ReviewedOn     int64              `cbor:"4,keyasint,omitempty"`
	PharmacistID   string             `cbor:"5,keyasint,omitempty"`
	Problems       []string           `cbor:"6,keyasint,omitempty"`
	Interventions  []interventionWire `cbor:"7,keyasint,omitempty"`
	CreatedAt      int64              `cbor:"8,keyasint,omitempty"`
	SummaryOn      int64              `cbor:"9,keyasint,omitempty"`
	SummaryMethod  string             `cbor:"10,keyasint,omitempty"`
	SummaryTo      string             `cbor:"11,keyasint,omitempty"`
	Coded          []codedProblemWire `cbor:"12,keyasint,omitempty"`
	Cognitive      bool               `cbor:"13,keyasint,omitempty"`
}

type codedProblemWire struct {
	Category    string `cbor:"1,keyasint,omitempty"`
	Description string `cbor:"2,keyasint,omitempty"`
}

func codedProblemToWire(c store.CodedProblem) codedProblemWire {
	return codedProblemWire{Category: c.Category, Description: c.Description}
}

func (w codedProblemWire) toStore() store.CodedProblem {
	return store.CodedProblem{Category: w.Category, Description: w.Description}
}

type interventionWire struct {
	Kind        string `cbor:"1,keyasint,omitempty"`
	Description string `cbor:"2,keyasint,omitempty"`
	ReferredTo  string `cbor:"3,keyasint,omitempty"`
	Outcome     string `cbor:"4,keyasint,omitempty"`
	Action      string `cbor:"5,keyasint,omitempty"`
	OutcomeCode string `cbor:"6,keyasint,omitempty"`
}

func interventionToWire(i store.Intervention) interventionWire {
	return interventionWire{Kind: i.Kind, Description: i.Description, ReferredTo: i.ReferredTo, Outcome: i.Outcome, Action: i.Action, OutcomeCode: i.OutcomeCode}
}

func (w interventionWire) toStore() store.Intervention {
	return store.Intervention{Kind: w.Kind, Description: w.Description, ReferredTo: w.ReferredTo, Outcome: w.Outcome, Action: w.Action, OutcomeCode: w.OutcomeCode}
}

func reviewToWire(r store.Review) reviewWire {
	return reviewWire{ID: r.ID, Kind: r.Kind, DeliveryMethod: r.DeliveryMethod, ReviewedOn: dEnc(r.ReviewedOn), PharmacistID: r.PharmacistID,
		Problems: r.Problems, Interventions: mapSlice(r.Interventions, interventionToWire), CreatedAt: tEnc(r.CreatedAt),
		SummaryOn: dEnc(r.SummaryDeliveredOn), SummaryMethod: r.SummaryMethod, SummaryTo: r.SummaryRecipient,
		Coded: mapSlice(r.CodedProblems, codedProblemToWire), Cognitive: r.CognitiveImpairment}
}

func (w reviewWire) toStore() store.Review {
	return store.Review{ID: w.ID, Kind: w.Kind, DeliveryMethod: w.DeliveryMethod, ReviewedOn: dDec(w.ReviewedOn), PharmacistID: w.PharmacistID,
		Problems: w.Problems, Interventions: mapSlice(w.Interventions, interventionWire.toStore), CreatedAt: tDec(w.CreatedAt),
		SummaryDeliveredOn: dDec(w.SummaryOn), SummaryMethod: w.SummaryMethod, SummaryRecipient: w.SummaryTo,
		CodedProblems: mapSlice(w.Coded, codedProblemWire.toStore), CognitiveImpairment: w.Cognitive}
}

type selfReportWire struct {
	ID            string `cbor:"1,keyasint,omitempty"`
	Kind          string `cbor:"2,keyasint,omitempty"`
	Name          string `cbor:"3,keyasint,omitempty"`
	HowIUseIt     string `cbor:"4,keyasint,omitempty"`
	StartedOn     int64  `cbor:"5,keyasint,omitempty"`
	ReportedBy    string `cbor:"6,keyasint,omitempty"`
	ReportedAt    int64  `cbor:"7,keyasint,omitempty"`
	Status        string `cbor:"8,keyasint,omitempty"`
	ResolvedBy    string `cbor:"9,keyasint,omitempty"`
	ResolvedAt    int64  `cbor:"10,keyasint,omitempty"`
	DeclineReason string `cbor:"11,keyasint,omitempty"`
	MedicationID  string `cbor:"12,keyasint,omitempty"`
}

func selfReportToWire(r store.SelfReport) selfReportWire {
	return selfReportWire{ID: r.ID, Kind: r.Kind, Name: r.Name, HowIUseIt: r.HowIUseIt, StartedOn: dEnc(r.StartedOn),
		ReportedBy: r.ReportedBy, ReportedAt: tEnc(r.ReportedAt), Status: r.Status, ResolvedBy: r.ResolvedBy,
		ResolvedAt: tEnc(r.ResolvedAt), DeclineReason: r.DeclineReason, MedicationID: r.MedicationID}
}

func (w selfReportWire) toStore() store.SelfReport {
	return store.SelfReport{ID: w.ID, Kind: w.Kind, Name: w.Name, HowIUseIt: w.HowIUseIt, StartedOn: dDec(w.StartedOn),
		ReportedBy: w.ReportedBy, ReportedAt: tDec(w.ReportedAt), Status: w.Status, ResolvedBy: w.ResolvedBy,
		ResolvedAt: tDec(w.ResolvedAt), DeclineReason: w.DeclineReason, MedicationID: w.MedicationID}
}

type inviteWire struct {
	CodeHash  string   `cbor:"1,keyasint,omitempty"`
	PatientID string   `cbor:"2,keyasint,omitempty"`
	Scopes    []string `cbor:"3,keyasint,omitempty"`
	EndsOn    int64    `cbor:"4,keyasint,omitempty"`
	ExpiresAt int64    `cbor:"5,keyasint,omitempty"`
	CreatedAt int64    `cbor:"6,keyasint,omitempty"`
}

type auditWire struct {
	ID         string `cbor:"1,keyasint,omitempty"`
	Time       int64  `cbor:"2,keyasint,omitempty"`
	ActorID    string `cbor:"3,keyasint,omitempty"`
	ActorRole  string `cbor:"4,keyasint,omitempty"`
	ActorName  string `cbor:"5,keyasint,omitempty"`
	PatientID  string `cbor:"6,keyasint,omitempty"`
	Procedure  string `cbor:"7,keyasint,omitempty"`
	Object     string `cbor:"8,keyasint,omitempty"`
	Allowed    bool   `cbor:"9,keyasint,omitempty"`
	Code       string `cbor:"10,keyasint,omitempty"`
	RequestID  string `cbor:"11,keyasint,omitempty"`
	Outcome    string `cbor:"12,keyasint,omitempty"`
	ClientAddr string `cbor:"13,keyasint,omitempty"`
	Reason     string `cbor:"14,keyasint,omitempty"`
}
