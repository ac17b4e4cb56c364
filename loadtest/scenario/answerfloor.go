package scenario

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/procs"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// The answer floors. The empty floor (Floor) answers nothing, so it prices
// what Connect costs per call, not what it costs to carry an answer: a
// 20-medicine PML is 5–6 KB that both sides frame, copy and (the client)
// decode, on the same cores. The answer floors are the same bare
// connect-go server replaying, byte for byte, what mtmd answered to the
// same calls (recorded once before the phases), so each mtmd phase can be
// set against a server that does nothing but deliver its answers.
const (
	PhaseFloorPML     = "floor: bare connect-go, PML answer"
	PhaseFloorAppOpen = "floor: bare connect-go, app open answers"

	// The recorded sets (procs.ReplayHeader).
	replayPML  = "pml20"
	replayOpen = "open"
)

// RecordAnswers calls mtmd once, unmeasured, and returns its answers for
// the bare server to replay, as each codec encodes them: the PML of
// patient pml (20 medicines, as ReadPML reads), and the four answers of
// patient open's app open (AppOpen opens every patient; open should be
// one of the population's median size). open's session is refreshed, as
// AppOpen would.
func (e *Env) RecordAnswers(ctx context.Context, pml, open int) (procs.Answers, error) {
	answers := procs.Answers{}
	add := func(set, procedure string, msg proto.Message) error {
		b, err := proto.Marshal(msg)
		if err != nil {
			return err
		}
		// connect-go's JSON codec is protojson with default options.
		j, err := protojson.Marshal(msg)
		if err != nil {
			return err
		}
		answers.Add(set, procedure, procs.Answer{Proto: b, JSON: j})
		return nil
	}
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	_, access := e.patients[pml].get()
	list, err := e.device(0, pml).Patient.GetMedicationList(ctx, loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: e.Pop.Patients[pml].ID}, access))
	if err != nil {
		return nil, fmt.Errorf("scenario.RecordAnswers: PML: %w", err)
	}
	if err := add(replayPML, mtmv1connect.PatientServiceGetMedicationListProcedure, list.Msg); err != nil {
		return nil, err
	}

	s, c, id := &e.patients[open], e.device(0, open), e.Pop.Patients[open].ID
	rt, _ := s.get()
	tokens, err := c.Auth.Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: rt}))
	if err != nil {
		return nil, fmt.Errorf("scenario.RecordAnswers: refresh: %w", err)
	}
	s.set(tokens.Msg.GetTokens().GetRefreshToken(), tokens.Msg.GetTokens().GetAccessToken())
	access = tokens.Msg.GetTokens().GetAccessToken()
	openList, err := c.Patient.GetMedicationList(ctx, loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: id}, access))
	if err != nil {
		return nil, fmt.Errorf("scenario.RecordAnswers: app open PML: %w", err)
	}
	plan, err := c.Patient.GetActionPlan(ctx, loadtest.Authed(&mtmv1.GetActionPlanRequest{PatientId: id}, access))
	if err != nil {
		return nil, fmt.Errorf("scenario.RecordAnswers: app open MAP: %w", err)
	}
	threads, err := c.Msg.ListThreads(ctx, loadtest.Authed(&mtmv1.ListThreadsRequest{PatientId: id}, access))
	if err != nil {
		return nil, fmt.Errorf("scenario.RecordAnswers: app open threads: %w", err)
	}
	for procedure, msg := range map[string]proto.Message{
		mtmv1connect.AuthServiceRefreshProcedure:              tokens.Msg,
		mtmv1connect.PatientServiceGetMedicationListProcedure: openList.Msg,
		mtmv1connect.PatientServiceGetActionPlanProcedure:     plan.Msg,
		mtmv1connect.MessagingServiceListThreadsProcedure:     threads.Msg,
	} {
		if err := add(replayOpen, procedure, msg); err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// MedianPatient returns a patient with the population's median number of
// medicines (the app open floor's recorded patient).
func (e *Env) MedianPatient() int {
	idx := make([]int, len(e.Pop.Patients))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return e.Pop.Patients[a].Medicines - e.Pop.Patients[b].Medicines })
	return idx[len(idx)/2]
}

// FloorPML is ReadPML against the bare server replaying the recorded
// 20-medicine PML: the same patients' requests and tokens, devices,
// protocol and concurrency.
func (e *Env) FloorPML(load loadtest.Load, set []int, bare []Clients) loadtest.Phase {
	p := &picker{set: set}
	return loadtest.Phase{Name: PhaseFloorPML, Load: load, Iterate: func(ctx context.Context, _ int) error {
		i := p.next()
		return e.readPML(ctx, bare[i%len(bare)], i, replayPML)
	}}
}

// FloorAppOpen is AppOpen's four calls against the bare server replaying
// the recorded app open (a median patient's): refresh, PML, MAP, threads,
// as the patients AppOpen opens, each with their own refresh token and
// (once signed in) access token, which the bare server does not read.
func (e *Env) FloorAppOpen(load loadtest.Load, bare []Clients, recorded int) loadtest.Phase {
	var n atomic.Uint64
	_, fallback := e.patients[recorded].get()
	return loadtest.Phase{Name: PhaseFloorAppOpen, Load: load, Iterate: func(ctx context.Context, _ int) error {
		i := int((n.Add(1) - 1) % uint64(len(e.patients)))
		rt, access := e.patients[i].get()
		if access == "" {
			access = fallback
		}
		c := bare[i%len(bare)]
		req := connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: rt})
		req.Header().Set(procs.ReplayHeader, replayOpen)
		rctx, cancel := loadtest.WithDeadline(ctx)
		_, err := c.Auth.Refresh(rctx, req)
		cancel()
		if err != nil {
			return err
		}
		return openReads(ctx, c, e.Pop.Patients[i].ID, access, replayOpen)
	}}
}
