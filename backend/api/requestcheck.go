package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// Refusing a request must cost little, whoever sends it. Every request
// passes, in this order and before any handler runs:
//
//  1. the role gate: a caller whose role may never make the call (a
//     patient calling CareService, a caregiver reading the pharmacy inbox)
//     gets permission_denied at once, from the verified token alone. The
//     request is not validated and the store is not touched.
//  2. a body the codecs could not decode is refused, naming the field
//     (codec.go); then validation against the contract's protovalidate rules, stopping at
//     the first violation. Every list and text field of a request has an
//     upper bound (TestEveryRequestListAndStringIsBounded), and
//     protovalidate checks a field's size before its contents, so a list
//     of 100,000 bad values costs one comparison and one violation.
//     Validation reads only the request, never the store, so its answer
//     tells a caller nothing about anyone's record; its work is bounded by
//     the contract, not by what a client chose to send.
//  3. the handler, which loads the record and checks the object-level
//     permission (a grant's scope, the pharmacist's pharmacy) against its
//     current state.
//
// Object-level checks come after validation deliberately: they need a
// store read, and doing that read for malformed requests would make the
// flood cheaper to send than to refuse. The answer to an invalid request
// is bounded too (maxViolationMessage, one violation), far under 16 KB.

// maxViolationMessage bounds each violation's text in an error; rule
// messages are short, so this only guards against a rule that quotes its
// input.
const maxViolationMessage = 256

// maxViolations is how many violations an error reports; validation
// stops at the first, and this bounds the answer should that change.
const maxViolations = 4

// NewRequestCheck returns the interceptor that applies the role gate and
// validation described above. Install it inside the auth interceptor (it
// reads the principal). It fails when the contract's rules do not compile.
func NewRequestCheck() (connect.Interceptor, error) {
	var inputs []protoreflect.MessageDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("mtm.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			ms := fd.Services().Get(i).Methods()
			for j := range ms.Len() {
				inputs = append(inputs, ms.Get(j).Input())
			}
		}
		return true
	})
	v, err := protovalidate.New(protovalidate.WithFailFast(), protovalidate.WithMessageDescriptors(inputs...))
	if err != nil {
		return nil, fmt.Errorf("api.NewRequestCheck: %w", err)
	}
	return &requestCheck{validator: v}, nil
}

type requestCheck struct {
	validator protovalidate.Validator
}

func (r *requestCheck) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := roleGate(ctx, req.Spec().Procedure); err != nil {
			return nil, err
		}
		if err := undecodable(req.Any()); err != nil {
			return nil, err
		}
		if err := r.validate(req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (r *requestCheck) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r *requestCheck) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := roleGate(ctx, conn.Spec().Procedure); err != nil {
			return err
		}
		return next(ctx, &checkedConn{StreamingHandlerConn: conn, check: r})
	}
}

// checkedConn validates every message a stream receives.
type checkedConn struct {
	connect.StreamingHandlerConn
	check *requestCheck
}

func (c *checkedConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	if err := undecodable(msg); err != nil {
		return err
	}
	return c.check.validate(msg)
}

// validate checks msg against its rules and returns invalid_argument
// naming the first bad field, with a bounded buf.validate.Violations
// detail.
func (r *requestCheck) validate(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	err := r.validator.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that does not compile or cannot be evaluated is our bug,
		// not the caller's.
		return connect.NewError(connect.CodeInternal, errors.New("request validation failed"))
	}
	pb := verr.ToProto()
	vs := pb.GetViolations()
	if len(vs) > maxViolations {
		vs = vs[:maxViolations]
	}
	problems := make([]fieldProblem, 0, len(vs))
	for _, v := range vs {
		if names := enumChoices(m.ProtoReflect().Descriptor(), v); names != nil {
			v.SetMessage("must be one of " + strings.Join(names, ", "))
		}
		v.SetMessage(truncate(v.GetMessage(), maxViolationMessage))
		problems = append(problems, fieldProblem{field: violationPath(v), message: v.GetMessage()})
	}
	return badRequestWith(problems, &validate.Violations{Violations: vs})
}

// enumChoices returns the value names a violation's enum field allows
// when the violation is about which value it holds (unset, undefined or
// not allowed), so that the answer says what to send instead of
// "must not be in list [0]". It returns nil for any other violation.
func enumChoices(root protoreflect.MessageDescriptor, v *validate.Violation) []string {
	rule := v.GetRule().GetElements()
	if len(rule) == 0 {
		return nil
	}
	switch first := rule[0].GetFieldName(); first {
	case "enum", "required", "repeated", "map":
	default:
		return nil
	}
	md := root
	var fd protoreflect.FieldDescriptor
	els := v.GetField().GetElements()
	for i, el := range els {
		if md == nil {
			return nil
		}
		fd = md.Fields().ByNumber(protoreflect.FieldNumber(el.GetFieldNumber()))
		if fd == nil {
			return nil
		}
		if i < len(els)-1 {
			switch {
			case fd.IsMap():
				md = fd.MapValue().Message()
			default:
				md = fd.Message()
			}
		}
	}
	if fd == nil {
		return nil
	}
	rules := fieldRules(fd)
	value := fd
	switch {
	case fd.IsMap():
		value, rules = fd.MapValue(), mapValueRules(fd)
	case fd.IsList():
		rules = itemRules(fd)
	}
	if value.Kind() != protoreflect.EnumKind {
		return nil
	}
	last := rule[len(rule)-1].GetFieldName()
	if last != "not_in" && last != "in" && last != "defined_only" && last != "required" {
		return nil
	}
	return allowedEnumNames(value.Enum(), rules)
}

// violationPath renders a violation's field path as a client names it
// ("intervention_details[3].description").
func violationPath(v *validate.Violation) string {
	var b strings.Builder
	for i, el := range v.GetField().GetElements() {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(el.GetFieldName())
		switch s := el.GetSubscript().(type) {
		case *validate.FieldPathElement_Index:
			fmt.Fprintf(&b, "[%d]", s.Index)
		case *validate.FieldPathElement_StringKey:
			fmt.Fprintf(&b, "[%q]", truncate(s.StringKey, 32))
		}
	}
	return b.String()
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Who may make a call at all, by role. This is the coarse half of the
// access policy, decided from the token alone; the handlers decide the
// rest (which patient, which scope) and check the role again themselves,
// with the same answers. A procedure not listed here (AuthService, which
// needs no token) passes.
type roleRule struct {
	allows  func(store.Role) bool
	refusal error
}

var (
	staffOnly       = roleRule{func(r store.Role) bool { return r.IsStaff() }, errStaffOnly}
	patientSideOnly = roleRule{func(r store.Role) bool { return r == store.RolePatient || r == store.RoleCaregiver }, errPatientSideOnly}
	caregiverOnly   = roleRule{func(r store.Role) bool { return r == store.RoleCaregiver }, errCaregiverOnly}
	anyRole         = roleRule{func(store.Role) bool { return true }, nil}
)

var roleRules = func() map[string]roleRule {
	m := map[string]roleRule{
		// PatientService: the patient side, except the two reports staff
		// may also read, and accepting an invite, which only a caregiver can.
		mtmv1connect.PatientServiceListCaregiversProcedure:        anyRole,
		mtmv1connect.PatientServiceListAccessEventsProcedure:      anyRole,
		mtmv1connect.PatientServiceAcceptCaregiverInviteProcedure: caregiverOnly,
		// MessagingService: both sides, except starting a thread (the patient
		// side) and the pharmacy's inbox and workflow (staff).
		mtmv1connect.MessagingServiceStartThreadProcedure:  patientSideOnly,
		mtmv1connect.MessagingServiceSendMessageProcedure:  anyRole,
		mtmv1connect.MessagingServiceListThreadsProcedure:  anyRole,
		mtmv1connect.MessagingServiceListMessagesProcedure: anyRole,
		mtmv1connect.MessagingServiceMarkReadProcedure:     anyRole,
		mtmv1connect.MessagingServiceWatchThreadProcedure:  anyRole,
		mtmv1connect.MessagingServiceListInboxProcedure:    staffOnly,
		mtmv1connect.MessagingServiceClaimThreadProcedure:  staffOnly,
		mtmv1connect.MessagingServiceCloseThreadProcedure:  staffOnly,
		mtmv1connect.MessagingServiceWatchInboxProcedure:   staffOnly,
		mtmv1connect.BenchServiceEmptyProcedure:            anyRole,
	}
	byService := map[string]roleRule{
		mtmv1connect.PatientServiceName: patientSideOnly,
		mtmv1connect.CareServiceName:    staffOnly,
	}
	protoregistry.GlobalFiles.RangeFilesByPackage("mtm.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			rule, ok := byService[string(svc.FullName())]
			if !ok {
				continue
			}
			for j := range svc.Methods().Len() {
				proc := "/" + string(svc.FullName()) + "/" + string(svc.Methods().Get(j).Name())
				if _, set := m[proc]; !set {
					m[proc] = rule
				}
			}
		}
		return true
	})
	return m
}()

// roleGate refuses a signed-in caller whose role may never make the call.
// Calls without a principal pass: the auth interceptor has already let
// through only public procedures, and handlers refuse the rest.
func roleGate(ctx context.Context, procedure string) error {
	rule, ok := roleRules[procedure]
	if !ok {
		return nil
	}
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || rule.allows(p.Role) {
		return nil
	}
	return rule.refusal
}
