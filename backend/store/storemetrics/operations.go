package storemetrics

// One wrapper per store operation, in alphabetical order. Each times the
// call and counts its failure; Allow also counts refusals. A new method of
// store.Store needs its wrapper here (TestEveryOperationIsMeasured).

import (
	"context"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

func (s *Store) AckReminders(ctx context.Context, shard int, done, next []store.Reminder, now time.Time, dedupeWindow time.Duration) error {
	ctx, start := s.begin(ctx, "AckReminders")
	err := s.Store.AckReminders(ctx, shard, done, next, now, dedupeWindow)
	s.observe(ctx, "AckReminders", start, err)
	return err
}

func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	ctx, start := s.begin(ctx, "Allow")
	r0, r1, err := s.Store.Allow(ctx, key, limit, window, now)
	s.observe(ctx, "Allow", start, err)
	if err == nil && !r0 {
		s.throttleRefusals.WithLabelValues(throttleName(key)).Inc()
	}
	return r0, r1, err
}

func (s *Store) AppendAuditEvent(ctx context.Context, ev store.AuditEvent, keep int) error {
	ctx, start := s.begin(ctx, "AppendAuditEvent")
	err := s.Store.AppendAuditEvent(ctx, ev, keep)
	s.observe(ctx, "AppendAuditEvent", start, err)
	return err
}

func (s *Store) AppendMessage(ctx context.Context, threadID string, m store.Message, fn func(store.Thread) (store.Thread, error)) (store.Thread, store.Message, bool, error) {
	ctx, start := s.begin(ctx, "AppendMessage")
	r0, r1, r2, err := s.Store.AppendMessage(ctx, threadID, m, fn)
	s.observe(ctx, "AppendMessage", start, err)
	return r0, r1, r2, err
}

func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification, keep int) error {
	ctx, start := s.begin(ctx, "AppendNotifications")
	err := s.Store.AppendNotifications(ctx, ns, keep)
	s.observe(ctx, "AppendNotifications", start, err)
	return err
}

func (s *Store) ClaimDueReminders(ctx context.Context, shard int, now time.Time, lease time.Duration, limit int) ([]store.Reminder, error) {
	ctx, start := s.begin(ctx, "ClaimDueReminders")
	r0, err := s.Store.ClaimDueReminders(ctx, shard, now, lease, limit)
	s.observe(ctx, "ClaimDueReminders", start, err)
	return r0, err
}

func (s *Store) ConsumeActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	ctx, start := s.begin(ctx, "ConsumeActivationCode")
	r0, err := s.Store.ConsumeActivationCode(ctx, codeHash, now)
	s.observe(ctx, "ConsumeActivationCode", start, err)
	return r0, err
}

func (s *Store) ConsumeInvite(ctx context.Context, codeHash string, now time.Time) (store.Invite, error) {
	ctx, start := s.begin(ctx, "ConsumeInvite")
	r0, err := s.Store.ConsumeInvite(ctx, codeHash, now)
	s.observe(ctx, "ConsumeInvite", start, err)
	return r0, err
}

func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	ctx, start := s.begin(ctx, "CreateAccount")
	err := s.Store.CreateAccount(ctx, a)
	s.observe(ctx, "CreateAccount", start, err)
	return err
}

func (s *Store) CreatePatient(ctx context.Context, p store.Patient) error {
	ctx, start := s.begin(ctx, "CreatePatient")
	err := s.Store.CreatePatient(ctx, p)
	s.observe(ctx, "CreatePatient", start, err)
	return err
}

func (s *Store) CreatePharmacy(ctx context.Context, p store.Pharmacy) error {
	ctx, start := s.begin(ctx, "CreatePharmacy")
	err := s.Store.CreatePharmacy(ctx, p)
	s.observe(ctx, "CreatePharmacy", start, err)
	return err
}

func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	ctx, start := s.begin(ctx, "CreateRefreshToken")
	err := s.Store.CreateRefreshToken(ctx, t)
	s.observe(ctx, "CreateRefreshToken", start, err)
	return err
}

func (s *Store) CreateThread(ctx context.Context, t store.Thread, first store.Message) (store.Thread, store.Message, bool, error) {
	ctx, start := s.begin(ctx, "CreateThread")
	r0, r1, r2, err := s.Store.CreateThread(ctx, t, first)
	s.observe(ctx, "CreateThread", start, err)
	return r0, r1, r2, err
}

func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	ctx, start := s.begin(ctx, "DeleteConsoleSession")
	err := s.Store.DeleteConsoleSession(ctx, idHash)
	s.observe(ctx, "DeleteConsoleSession", start, err)
	return err
}

func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	ctx, start := s.begin(ctx, "DeleteSigningKey")
	err := s.Store.DeleteSigningKey(ctx, kid)
	s.observe(ctx, "DeleteSigningKey", start, err)
	return err
}

func (s *Store) ForgetAttempts(ctx context.Context, key string, n int, window time.Duration, now time.Time) error {
	ctx, start := s.begin(ctx, "ForgetAttempts")
	err := s.Store.ForgetAttempts(ctx, key, n, window, now)
	s.observe(ctx, "ForgetAttempts", start, err)
	return err
}

func (s *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	ctx, start := s.begin(ctx, "GetAccount")
	r0, err := s.Store.GetAccount(ctx, id)
	s.observe(ctx, "GetAccount", start, err)
	return r0, err
}

func (s *Store) GetAccountByEmail(ctx context.Context, email string) (store.Account, error) {
	ctx, start := s.begin(ctx, "GetAccountByEmail")
	r0, err := s.Store.GetAccountByEmail(ctx, email)
	s.observe(ctx, "GetAccountByEmail", start, err)
	return r0, err
}

func (s *Store) GetActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	ctx, start := s.begin(ctx, "GetActivationCode")
	r0, err := s.Store.GetActivationCode(ctx, codeHash, now)
	s.observe(ctx, "GetActivationCode", start, err)
	return r0, err
}

func (s *Store) GetConsoleSession(ctx context.Context, idHash string, now time.Time) (store.ConsoleSession, error) {
	ctx, start := s.begin(ctx, "GetConsoleSession")
	r0, err := s.Store.GetConsoleSession(ctx, idHash, now)
	s.observe(ctx, "GetConsoleSession", start, err)
	return r0, err
}

func (s *Store) GetDose(ctx context.Context, patientID, occurrenceID string) (store.DoseRecord, error) {
	ctx, start := s.begin(ctx, "GetDose")
	r0, err := s.Store.GetDose(ctx, patientID, occurrenceID)
	s.observe(ctx, "GetDose", start, err)
	return r0, err
}

func (s *Store) GetPatient(ctx context.Context, id string) (store.Patient, error) {
	ctx, start := s.begin(ctx, "GetPatient")
	r0, err := s.Store.GetPatient(ctx, id)
	s.observe(ctx, "GetPatient", start, err)
	return r0, err
}

func (s *Store) GetPharmacy(ctx context.Context, id string) (store.Pharmacy, error) {
	ctx, start := s.begin(ctx, "GetPharmacy")
	r0, err := s.Store.GetPharmacy(ctx, id)
	s.observe(ctx, "GetPharmacy", start, err)
	return r0, err
}

func (s *Store) GetThread(ctx context.Context, id string) (store.Thread, error) {
	ctx, start := s.begin(ctx, "GetThread")
	r0, err := s.Store.GetThread(ctx, id)
	s.observe(ctx, "GetThread", start, err)
	return r0, err
}

func (s *Store) InboxChanges(ctx context.Context, pharmacyID string, after int64, limit int) ([]store.InboxChange, error) {
	ctx, start := s.begin(ctx, "InboxChanges")
	r0, err := s.Store.InboxChanges(ctx, pharmacyID, after, limit)
	s.observe(ctx, "InboxChanges", start, err)
	return r0, err
}

func (s *Store) InboxHead(ctx context.Context, pharmacyID string) (int64, error) {
	ctx, start := s.begin(ctx, "InboxHead")
	r0, err := s.Store.InboxHead(ctx, pharmacyID)
	s.observe(ctx, "InboxHead", start, err)
	return r0, err
}

func (s *Store) ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]store.AuditEvent, error) {
	ctx, start := s.begin(ctx, "ListAuditEvents")
	r0, err := s.Store.ListAuditEvents(ctx, patientID, before, limit)
	s.observe(ctx, "ListAuditEvents", start, err)
	return r0, err
}

func (s *Store) ListInbox(ctx context.Context, pharmacyID string, state store.ThreadState, after string, limit int) ([]store.Thread, error) {
	ctx, start := s.begin(ctx, "ListInbox")
	r0, err := s.Store.ListInbox(ctx, pharmacyID, state, after, limit)
	s.observe(ctx, "ListInbox", start, err)
	return r0, err
}

func (s *Store) ListMessages(ctx context.Context, threadID string, afterSeq int64, limit int) ([]store.Message, error) {
	ctx, start := s.begin(ctx, "ListMessages")
	r0, err := s.Store.ListMessages(ctx, threadID, afterSeq, limit)
	s.observe(ctx, "ListMessages", start, err)
	return r0, err
}

func (s *Store) ListNotifications(ctx context.Context, patientID string, limit int) ([]store.Notification, error) {
	ctx, start := s.begin(ctx, "ListNotifications")
	r0, err := s.Store.ListNotifications(ctx, patientID, limit)
	s.observe(ctx, "ListNotifications", start, err)
	return r0, err
}

func (s *Store) ListPatientThreads(ctx context.Context, patientID, before string, limit int) ([]store.Thread, error) {
	ctx, start := s.begin(ctx, "ListPatientThreads")
	r0, err := s.Store.ListPatientThreads(ctx, patientID, before, limit)
	s.observe(ctx, "ListPatientThreads", start, err)
	return r0, err
}

func (s *Store) ListPatients(ctx context.Context, pharmacyID, after string, limit int) ([]store.Patient, error) {
	ctx, start := s.begin(ctx, "ListPatients")
	r0, err := s.Store.ListPatients(ctx, pharmacyID, after, limit)
	s.observe(ctx, "ListPatients", start, err)
	return r0, err
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	ctx, start := s.begin(ctx, "ListSigningKeys")
	r0, err := s.Store.ListSigningKeys(ctx)
	s.observe(ctx, "ListSigningKeys", start, err)
	return r0, err
}

func (s *Store) LoadReminderContext(ctx context.Context, rs []store.Reminder) (store.ReminderContext, error) {
	ctx, start := s.begin(ctx, "LoadReminderContext")
	r0, err := s.Store.LoadReminderContext(ctx, rs)
	s.observe(ctx, "LoadReminderContext", start, err)
	return r0, err
}

func (s *Store) PutActivationCode(ctx context.Context, c store.ActivationCode) error {
	ctx, start := s.begin(ctx, "PutActivationCode")
	err := s.Store.PutActivationCode(ctx, c)
	s.observe(ctx, "PutActivationCode", start, err)
	return err
}

func (s *Store) PutConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	ctx, start := s.begin(ctx, "PutConsoleSession")
	err := s.Store.PutConsoleSession(ctx, cs)
	s.observe(ctx, "PutConsoleSession", start, err)
	return err
}

func (s *Store) PutInvite(ctx context.Context, inv store.Invite) error {
	ctx, start := s.begin(ctx, "PutInvite")
	err := s.Store.PutInvite(ctx, inv)
	s.observe(ctx, "PutInvite", start, err)
	return err
}

func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	ctx, start := s.begin(ctx, "PutSigningKey")
	err := s.Store.PutSigningKey(ctx, k)
	s.observe(ctx, "PutSigningKey", start, err)
	return err
}

func (s *Store) RecordDose(ctx context.Context, d store.DoseRecord, keep int) error {
	ctx, start := s.begin(ctx, "RecordDose")
	err := s.Store.RecordDose(ctx, d, keep)
	s.observe(ctx, "RecordDose", start, err)
	return err
}

func (s *Store) RenewReminderLeases(ctx context.Context, shard int, rs []store.Reminder, now time.Time, lease time.Duration) (int, error) {
	ctx, start := s.begin(ctx, "RenewReminderLeases")
	r0, err := s.Store.RenewReminderLeases(ctx, shard, rs, now, lease)
	s.observe(ctx, "RenewReminderLeases", start, err)
	return r0, err
}

func (s *Store) RevokeRefreshFamily(ctx context.Context, tokenHash string) error {
	ctx, start := s.begin(ctx, "RevokeRefreshFamily")
	err := s.Store.RevokeRefreshFamily(ctx, tokenHash)
	s.observe(ctx, "RevokeRefreshFamily", start, err)
	return err
}

func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, r store.Rotation, now time.Time) (store.Rotated, error) {
	ctx, start := s.begin(ctx, "RotateRefreshToken")
	r0, err := s.Store.RotateRefreshToken(ctx, oldHash, r, now)
	s.observe(ctx, "RotateRefreshToken", start, err)
	return r0, err
}

func (s *Store) ScheduleReminders(ctx context.Context, patientID string, add, cancel []store.Reminder) error {
	ctx, start := s.begin(ctx, "ScheduleReminders")
	err := s.Store.ScheduleReminders(ctx, patientID, add, cancel)
	s.observe(ctx, "ScheduleReminders", start, err)
	return err
}

func (s *Store) SettleReminders(ctx context.Context, shard int, arg store.Settlement) error {
	ctx, start := s.begin(ctx, "SettleReminders")
	err := s.Store.SettleReminders(ctx, shard, arg)
	s.observe(ctx, "SettleReminders", start, err)
	return err
}

func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(store.Account) (store.Account, error)) (store.Account, error) {
	ctx, start := s.begin(ctx, "UpdateAccount")
	r0, err := s.Store.UpdateAccount(ctx, id, fn)
	s.observe(ctx, "UpdateAccount", start, err)
	return r0, err
}

func (s *Store) UpdatePharmacy(ctx context.Context, id string, fn func(*store.Pharmacy) error) (store.Pharmacy, error) {
	ctx, start := s.begin(ctx, "UpdatePharmacy")
	r0, err := s.Store.UpdatePharmacy(ctx, id, fn)
	s.observe(ctx, "UpdatePharmacy", start, err)
	return r0, err
}

func (s *Store) UpdatePatient(ctx context.Context, id string, fn func(store.Patient) (store.Patient, error)) (store.Patient, error) {
	ctx, start := s.begin(ctx, "UpdatePatient")
	r0, err := s.Store.UpdatePatient(ctx, id, fn)
	s.observe(ctx, "UpdatePatient", start, err)
	return r0, err
}

func (s *Store) UpdateThread(ctx context.Context, id string, fn func(store.Thread) (store.Thread, error)) (store.Thread, error) {
	ctx, start := s.begin(ctx, "UpdateThread")
	r0, err := s.Store.UpdateThread(ctx, id, fn)
	s.observe(ctx, "UpdateThread", start, err)
	return r0, err
}

func (s *Store) ListWorklist(ctx context.Context, pharmacyID string, l store.Worklist, through store.Date, after store.WorklistCursor, limit int) ([]store.WorklistEntry, error) {
	ctx, start := s.begin(ctx, "ListWorklist")
	r0, err := s.Store.ListWorklist(ctx, pharmacyID, l, through, after, limit)
	s.observe(ctx, "ListWorklist", start, err)
	return r0, err
}

func (s *Store) ReindexPatient(ctx context.Context, patientID string) error {
	ctx, start := s.begin(ctx, "ReindexPatient")
	err := s.Store.ReindexPatient(ctx, patientID)
	s.observe(ctx, "ReindexPatient", start, err)
	return err
}

func (s *Store) SetWorklistDates(ctx context.Context, patientID string, version int64, dates store.WorklistDates) error {
	ctx, start := s.begin(ctx, "SetWorklistDates")
	err := s.Store.SetWorklistDates(ctx, patientID, version, dates)
	s.observe(ctx, "SetWorklistDates", start, err)
	return err
}
func (s *Store) PatientChanges(ctx context.Context, patientID string, after int64, limit int) ([]store.Change, store.PartVersions, error) {
	ctx, start := s.begin(ctx, "PatientChanges")
	r0, r1, err := s.Store.PatientChanges(ctx, patientID, after, limit)
	s.observe(ctx, "PatientChanges", start, err)
	return r0, r1, err
}

func (s *Store) PatientParts(ctx context.Context, patientID string) (store.PartVersions, error) {
	ctx, start := s.begin(ctx, "PatientParts")
	r0, err := s.Store.PatientParts(ctx, patientID)
	s.observe(ctx, "PatientParts", start, err)
	return r0, err
}

func (s *Store) PatientWithParts(ctx context.Context, patientID string) (store.Patient, store.PartVersions, error) {
	ctx, start := s.begin(ctx, "PatientWithParts")
	r0, r1, err := s.Store.PatientWithParts(ctx, patientID)
	s.observe(ctx, "PatientWithParts", start, err)
	return r0, r1, err
}

func (s *Store) FindPatients(ctx context.Context, pharmacyID, familyName string, birthDate store.Date) ([]store.Patient, error) {
	ctx, start := s.begin(ctx, "FindPatients")
	r0, err := s.Store.FindPatients(ctx, pharmacyID, familyName, birthDate)
	s.observe(ctx, "FindPatients", start, err)
	return r0, err
}

func (s *Store) Reencrypt(ctx context.Context, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, error) {
	ctx, start := s.begin(ctx, "Reencrypt")
	r0, err := s.Store.Reencrypt(ctx, cursor, opts)
	s.observe(ctx, "Reencrypt", start, err)
	return r0, err
}

func (s *Store) DeletePatient(ctx context.Context, id string) (store.Erased, error) {
	ctx, start := s.begin(ctx, "DeletePatient")
	r0, err := s.Store.DeletePatient(ctx, id)
	s.observe(ctx, "DeletePatient", start, err)
	return r0, err
}
