package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store/backends"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The pharmacy's work lists, clinical conditions, and rebuilding the
// work-list index.

var conditionKindNames = map[string]mtmv1.ClinicalConditionKind{
	"hospice":   mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_HOSPICE,
	"esrd":      mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_ESRD,
	"inpatient": mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_INPATIENT,
	"snf":       mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_SKILLED_NURSING,
}

func conditionKindName(k mtmv1.ClinicalConditionKind) string {
	for name, v := range conditionKindNames {
		if v == k {
			return name
		}
	}
	return "?"
}

func runWorklist(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "worklist", "cmr|below|followups [--due-by YYYY-MM-DD] [--limit N]")
	r := addRemoteFlags(sys, fs)
	dueBy := fs.String("due-by", "", "cmr: due on or before this `date` (default today)")
	limit := fs.Int("limit", 100, "show at most `N` entries")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !strings.Contains(" cmr below followups ", " "+pos[0]+" ") {
		return errors.New("worklist: want one of cmr, below, followups")
	}
	if *limit < 1 || *limit > 500 {
		return errors.New("worklist: --limit must be 1 to 500")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("worklist: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	tw := tabwriter.NewWriter(sys.stdout, 0, 4, 2, ' ', 0)
	name := func(p *mtmv1.Patient) string { return p.GetFamilyName() + ", " + p.GetGivenName() }
	more := false
	switch pos[0] {
	case "cmr":
		res, err := c.care.ListPatientsDueForCmr(ctx, connect.NewRequest(&mtmv1.ListPatientsDueForCmrRequest{DueBy: *dueBy, PageSize: int32(*limit)}))
		if err != nil {
			return explain("worklist", err)
		}
		fmt.Fprintln(tw, "PATIENT\tNAME\tCMR DUE\tLAST CMR")
		for _, d := range res.Msg.GetPatients() {
			last := d.GetLastCmrOn()
			if last == "" {
				last = "never"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.GetPatient().GetId(), name(d.GetPatient()), d.GetNextCmrDueOn(), last)
		}
		more = res.Msg.GetTruncated()
	case "below":
		res, err := c.care.ListPatientsBelowAdherenceThreshold(ctx, connect.NewRequest(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: int32(*limit)}))
		if err != nil {
			return explain("worklist", err)
		}
		fmt.Fprintln(tw, "PATIENT\tNAME\tBELOW SINCE\tMEASURE\tPDC\tMEDICATION")
		for _, p := range res.Msg.GetPatients() {
			for _, m := range p.GetMedications() {
				measure := strings.ReplaceAll(strings.TrimPrefix(m.GetMeasure().String(), "ADHERENCE_MEASURE_"), "_", "-")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%% (%d/%d days)\t%s\n", p.GetPatient().GetId(), name(p.GetPatient()), p.GetBelowSince(),
					measure, 100*m.GetProportionOfDaysCovered(), m.GetDaysCovered(), m.GetDaysInPeriod(), m.GetMedicationId())
			}
		}
		more = res.Msg.GetTruncated()
	case "followups":
		res, err := c.care.ListOverdueFollowUps(ctx, connect.NewRequest(&mtmv1.ListOverdueFollowUpsRequest{PageSize: int32(*limit)}))
		if err != nil {
			return explain("worklist", err)
		}
		fmt.Fprintln(tw, "PATIENT\tNAME\tDUE\tFOLLOW-UP")
		for _, f := range res.Msg.GetFollowUps() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.GetPatient().GetId(), name(f.GetPatient()), f.GetDueAt().AsTime().Format(time.RFC3339), f.GetFollowUpId())
		}
		more = res.Msg.GetTruncated()
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintln(sys.stdout, "(more: raise --limit)")
	}
	return nil
}

func runCondition(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "condition", "<patient-id> --kind hospice|esrd|inpatient|snf --from YYYY-MM-DD [--through YYYY-MM-DD] [--note TEXT]")
	r := addRemoteFlags(sys, fs)
	kind := fs.String("kind", "", "hospice, esrd, inpatient or snf (skilled nursing)")
	from := fs.String("from", "", "enrolment, diagnosis or admission `date`")
	through := fs.String("through", "", "end or discharge `date` (empty while ongoing)")
	note := fs.String("note", "", "a note")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	k, ok := conditionKindNames[*kind]
	switch {
	case len(pos) != 1:
		return errors.New("condition: want exactly one patient id")
	case !ok:
		return errors.New("condition: --kind must be hospice, esrd, inpatient or snf")
	}
	if err := required(map[string]string{"from": *from}); err != nil {
		return fmt.Errorf("condition: %w", err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("condition: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.RecordClinicalCondition(ctx, connect.NewRequest(&mtmv1.RecordClinicalConditionRequest{
		PatientId: pos[0], Kind: k, From: *from, Through: *through, Note: *note}))
	if err != nil {
		return explain("condition", err)
	}
	fmt.Fprintf(sys.stdout, "recorded %s %s\n", *kind, res.Msg.GetCondition().GetId())
	return nil
}

func runEndCondition(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "end-condition", "<patient-id> <condition-id> --through YYYY-MM-DD")
	r := addRemoteFlags(sys, fs)
	through := fs.String("through", "", "end or discharge `date`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("end-condition: want a patient id and a condition id")
	}
	if err := required(map[string]string{"through": *through}); err != nil {
		return fmt.Errorf("end-condition: %w", err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("end-condition: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.care.EndClinicalCondition(ctx, connect.NewRequest(&mtmv1.EndClinicalConditionRequest{PatientId: pos[0], ConditionId: pos[1], Through: *through})); err != nil {
		return explain("end-condition", err)
	}
	fmt.Fprintf(sys.stdout, "%s ended on %s\n", pos[1], *through)
	return nil
}

func runRemoveCondition(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "remove-condition", "<patient-id> <condition-id>")
	r := addRemoteFlags(sys, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("remove-condition: want a patient id and a condition id")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("remove-condition: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.care.RemoveClinicalCondition(ctx, connect.NewRequest(&mtmv1.RemoveClinicalConditionRequest{PatientId: pos[0], ConditionId: pos[1]})); err != nil {
		return explain("remove-condition", err)
	}
	fmt.Fprintf(sys.stdout, "%s removed\n", pos[1])
	return nil
}

func runReindex(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "reindex", "--data-dir DIR|--redis-url URL --pharmacy ID")
	sf := bindStoreFlags(fs, sys, "mtmd's data `directory` (MTM_DATA_DIR); the server must be stopped")
	pharmacy := fs.String("pharmacy", "", "pharmacy `id` whose patients to reindex")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"pharmacy": *pharmacy}); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	settings, err := sf.settings("reindex")
	if err != nil {
		return err
	}
	st, _, err := backends.Open(ctx, settings)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	defer st.Close()
	visited, changed, err := clinical.Reindex(ctx, st, *pharmacy, sys.now())
	if err != nil {
		return fmt.Errorf("reindex: after %d patients: %w", visited, err)
	}
	fmt.Fprintf(sys.stdout, "reindexed %d patients of pharmacy %s (%d with new work-list dates)\n", visited, *pharmacy, changed)
	return nil
}
