package api

import (
	"context"
	"errors"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Clinical conditions: hospice, ESRD, inpatient and skilled-nursing stays,
// recorded by the pharmacist of the patient's pharmacy for the PQA
// adherence measures (clinical.ConditionsOf). Each write recomputes the
// patient's work-list dates like any other (update).

// maxConditions bounds the conditions one record holds.
const maxConditions = 200

var conditionKinds = map[mtmv1.ClinicalConditionKind]string{
	mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_HOSPICE:         store.ConditionHospice,
	mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_ESRD:            store.ConditionESRD,
	mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_INPATIENT:       store.ConditionInpatient,
	mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_SKILLED_NURSING: store.ConditionSNF,
}

var conditionKindToProto = invert(conditionKinds)

func conditionToProto(c store.Condition) *mtmv1.ClinicalCondition {
	return &mtmv1.ClinicalCondition{Id: c.ID, Kind: conditionKindToProto[c.Kind], From: c.From.String(), Through: c.Through.String(),
		Note: c.Note, RecordedBy: c.RecordedBy, RecordedAt: ts(c.RecordedAt)}
}

func conditionsToProto(cs []store.Condition) []*mtmv1.ClinicalCondition {
	sorted := slices.Clone(cs)
	slices.SortStableFunc(sorted, func(a, b store.Condition) int { return a.From.Time().Compare(b.From.Time()) })
	var out []*mtmv1.ClinicalCondition
	for _, c := range sorted {
		out = append(out, conditionToProto(c))
	}
	return out
}

// conditionEnd checks an end date against the condition's start.
func (c Config) conditionEnd(field, s string, from store.Date) (store.Date, error) {
	through, err := c.pastOrToday(field, s)
	if err != nil {
		return through, err
	}
	if through.Before(from) {
		return through, invalidField(field, "before the start ("+from.String()+")")
	}
	return through, nil
}

// RecordClinicalCondition implements
// mtm.v1.CareService.RecordClinicalCondition.
func (s *CareService) RecordClinicalCondition(ctx context.Context, req *connect.Request[mtmv1.RecordClinicalConditionRequest]) (*connect.Response[mtmv1.RecordClinicalConditionResponse], error) {
	c, m := s.cfg, req.Msg
	cond := store.Condition{Kind: conditionKinds[m.GetKind()], Note: strings.TrimSpace(m.GetNote()), RecordedAt: c.Now()}
	var err error
	if cond.From, err = c.pastOrToday("from", m.GetFrom()); err != nil {
		return nil, err
	}
	if m.GetThrough() != "" {
		if cond.Kind == store.ConditionESRD {
			return nil, invalidField("through", "end-stage renal disease has a diagnosis date and no end")
		}
		if cond.Through, err = c.conditionEnd("through", m.GetThrough(), cond.From); err != nil {
			return nil, err
		}
	}
	if cond.ID, err = auth.NewID("cd"); err != nil {
		return nil, err
	}
	_, err = c.updateForCare(ctx, m.GetPatientId(), func(p auth.Principal, pt *store.Patient) error {
		if len(pt.Conditions) >= maxConditions {
			return connect.NewError(connect.CodeResourceExhausted, errors.New("the record holds the most conditions it can"))
		}
		if cond.Kind == store.ConditionESRD && slices.ContainsFunc(pt.Conditions, func(x store.Condition) bool { return x.Kind == store.ConditionESRD }) {
			return connect.NewError(connect.CodeAlreadyExists, errors.New("end-stage renal disease is already recorded; remove it first to correct the date"))
		}
		cond.RecordedBy = p.Subject
		pt.Conditions = append(pt.Conditions, cond)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RecordClinicalConditionResponse{Condition: conditionToProto(cond)}), nil
}

// EndClinicalCondition implements mtm.v1.CareService.EndClinicalCondition.
func (s *CareService) EndClinicalCondition(ctx context.Context, req *connect.Request[mtmv1.EndClinicalConditionRequest]) (*connect.Response[mtmv1.EndClinicalConditionResponse], error) {
	c, m := s.cfg, req.Msg
	var out store.Condition
	_, err := c.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		i := slices.IndexFunc(pt.Conditions, func(x store.Condition) bool { return x.ID == m.GetConditionId() })
		if i < 0 {
			return notFound("condition")
		}
		pt.Conditions = slices.Clone(pt.Conditions)
		cond := &pt.Conditions[i]
		switch {
		case cond.Kind == store.ConditionESRD:
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("end-stage renal disease does not end"))
		case !cond.Through.IsZero():
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("the condition already ended on "+cond.Through.String()))
		}
		through, err := c.conditionEnd("through", m.GetThrough(), cond.From)
		if err != nil {
			return err
		}
		cond.Through = through
		out = *cond
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.EndClinicalConditionResponse{Condition: conditionToProto(out)}), nil
}

// RemoveClinicalCondition implements
// mtm.v1.CareService.RemoveClinicalCondition.
func (s *CareService) RemoveClinicalCondition(ctx context.Context, req *connect.Request[mtmv1.RemoveClinicalConditionRequest]) (*connect.Response[mtmv1.RemoveClinicalConditionResponse], error) {
	m := req.Msg
	_, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		i := slices.IndexFunc(pt.Conditions, func(x store.Condition) bool { return x.ID == m.GetConditionId() })
		if i < 0 {
			return notFound("condition")
		}
		pt.Conditions = slices.Delete(slices.Clone(pt.Conditions), i, i+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RemoveClinicalConditionResponse{}), nil
}
