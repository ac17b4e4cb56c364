package scenario

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/procs"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Phase names, also the keys of the report.
const (
	PhaseFloor    = "floor: bare connect-go Empty"
	PhaseBaseline = "baseline: Empty"
	PhasePML20    = "PML read (20 medicines)"
	PhaseAppOpen  = "app open"
	PhaseDose     = "dose confirmations"
)

// picker hands out the members of a set round robin, safe for concurrent
// use.
type picker struct {
	set []int
	n   atomic.Uint64
}

func (p *picker) next() int { return p.set[int(p.n.Add(1)-1)%len(p.set)] }

// Baseline is the empty RPC, called as the patients in set (signed in)
// from their own devices: the same clients, tokens and interceptors as
// ReadPML, without the work.
func (e *Env) Baseline(load loadtest.Load, set []int) loadtest.Phase {
	p := &picker{set: set}
	return loadtest.Phase{Name: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		i := p.next()
		_, access := e.patients[i].get()
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		_, err := e.device(0, i).Bench.Empty(ctx, loadtest.Authed(&mtmv1.EmptyRequest{}, access))
		return err
	}}
}

// Floor is the empty RPC against the bare connect-go handler (its own
// process, no interceptors), called exactly as Baseline calls mtmd: the
// same patients' tokens, devices, protocol and concurrency. bare are the
// devices' clients for that server (NewClients).
func (e *Env) Floor(load loadtest.Load, set []int, bare []Clients) loadtest.Phase {
	p := &picker{set: set}
	return loadtest.Phase{Name: PhaseFloor, Load: load, Iterate: func(ctx context.Context, _ int) error {
		i := p.next()
		_, access := e.patients[i].get()
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		_, err := bare[i%len(bare)].Bench.Empty(ctx, loadtest.Authed(&mtmv1.EmptyRequest{}, access))
		return err
	}}
}

// ReadPML reads the Personal Medication List of the patients in set (which
// should have 20 medicines), each as themselves: authentication, access
// check, audit event, store read, encoding.
func (e *Env) ReadPML(load loadtest.Load, set []int) loadtest.Phase {
	p := &picker{set: set}
	return loadtest.Phase{Name: PhasePML20, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		i := p.next()
		return e.readPML(ctx, e.device(0, i), i, "")
	}}
}

// readPML is one PML read as patient i through c; replaySet marks it for
// the bare server's replay ("" for mtmd).
func (e *Env) readPML(ctx context.Context, c Clients, i int, replaySet string) error {
	_, access := e.patients[i].get()
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	_, err := c.Patient.GetMedicationList(ctx, authed(&mtmv1.GetMedicationListRequest{PatientId: e.Pop.Patients[i].ID}, access, replaySet))
	return err
}

// openReads are app open's three reads (PML, MAP, threads) as patient id
// through c; replaySet marks them for the bare server's replay ("" for
// mtmd).
func openReads(ctx context.Context, c Clients, id, access, replaySet string) error {
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	if _, err := c.Patient.GetMedicationList(ctx, authed(&mtmv1.GetMedicationListRequest{PatientId: id}, access, replaySet)); err != nil {
		return err
	}
	if _, err := c.Patient.GetActionPlan(ctx, authed(&mtmv1.GetActionPlanRequest{PatientId: id}, access, replaySet)); err != nil {
		return err
	}
	_, err := c.Msg.ListThreads(ctx, authed(&mtmv1.ListThreadsRequest{PatientId: id}, access, replaySet))
	return err
}

// authed is loadtest.Authed, marked for the bare server's replay of
// replaySet (procs.ReplayHeader) unless that is "".
func authed[T any](msg *T, access, replaySet string) *connect.Request[T] {
	req := loadtest.Authed(msg, access)
	if replaySet != "" {
		req.Header().Set(procs.ReplayHeader, replaySet)
	}
	return req
}

// AppOpen is the morning: each patient opens the app, which refreshes its
// sign-in, then reads the PML, the MAP and the message threads. Workers take disjoint patients, so a refresh token is never
// spent twice at once.
func (e *Env) AppOpen(load loadtest.Load) loadtest.Phase {
	workers := max(load.Concurrency, 1)
	cursor := make([]int, workers)
	return loadtest.Phase{Name: PhaseAppOpen, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, w int) error {
		i := w + cursor[w]*workers
		if i >= len(e.patients) {
			cursor[w], i = 0, w
		}
		cursor[w]++
		if i >= len(e.patients) {
			return nil
		}
		s := &e.patients[i]
		if err := e.refresh(ctx, 0, i, s); err != nil {
			return err
		}
		_, access := s.get()
		return openReads(ctx, e.device(0, i), e.Pop.Patients[i].ID, access, "")
	}}
}

// DoseOccurrenceID is the occurrence id of the 8:00 local dose of a dose
// schedule on the given day, as the reminder push carries it
// (store.Reminder.OccurrenceID for a dose).
func DoseOccurrenceID(scheduleID string, day time.Time, zone *time.Location) string {
	y, m, d := day.In(zone).Date()
	at := time.Date(y, m, d, 8, 0, 0, 0, zone)
	return "d." + scheduleID + "." + strconv.FormatInt(at.Unix(), 36)
}

// DoseLog is what a dose-confirmation phase had acknowledged: for each
// (patient, occurrence) the start of the last RecordDose call that
// succeeded, to check afterwards that the store still holds every
// acknowledged write (the rotation-under-load check). Safe for concurrent
// use.
type DoseLog struct {
	mu   sync.Mutex
	acks map[DoseAck]time.Time
}

// DoseAck names one acknowledged dose confirmation.
type DoseAck struct{ PatientID, OccurrenceID string }

// Ack records that a confirmation of the occurrence started at sent was
// acknowledged.
func (l *DoseLog) Ack(patientID, occurrenceID string, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acks == nil {
		l.acks = map[DoseAck]time.Time{}
	}
	k := DoseAck{patientID, occurrenceID}
	if sent.After(l.acks[k]) {
		l.acks[k] = sent
	}
}

// Acks returns a copy of the acknowledged confirmations and when the last
// of each was sent.
func (l *DoseLog) Acks() map[DoseAck]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acks)
}

// ConfirmDoses has the signed-in patients in set confirm (taken) their
// 8:00 dose of one of their schedules on one of the last seven days.
func (e *Env) ConfirmDoses(load loadtest.Load, set []int, now time.Time) loadtest.Phase {
	return e.ConfirmDosesLogged(load, set, now, nil)
}

// ConfirmDosesLogged is ConfirmDoses that also records every
// acknowledged confirmation in log (nil: none).
func (e *Env) ConfirmDosesLogged(load loadtest.Load, set []int, now time.Time, log *DoseLog) loadtest.Phase {
	var withSchedules []int
	for _, i := range set {
		if len(e.Pop.Patients[i].DoseSchedules) > 0 {
			withSchedules = append(withSchedules, i)
		}
	}
	p := &picker{set: withSchedules}
	var n atomic.Uint64
	return loadtest.Phase{Name: PhaseDose, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		if len(withSchedules) == 0 {
			return errors.New("no patient has a dose schedule")
		}
		i := p.next()
		pt := e.Pop.Patients[i]
		zone, err := time.LoadLocation(pt.TimeZone)
		if err != nil {
			return err
		}
		k := n.Add(1)
		sched := pt.DoseSchedules[int(k)%len(pt.DoseSchedules)]
		occ := DoseOccurrenceID(sched, now.AddDate(0, 0, -int(k%7)), zone)
		_, access := e.patients[i].get()
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		sent := time.Now()
		_, err = e.device(0, i).Patient.RecordDose(ctx, loadtest.Authed(&mtmv1.RecordDoseRequest{
			PatientId: pt.ID, OccurrenceId: occ, Outcome: mtmv1.DoseOutcome_DOSE_OUTCOME_TAKEN,
		}, access))
		if err == nil && log != nil {
			log.Ack(pt.ID, occ, sent)
		}
		return err
	}}
}
