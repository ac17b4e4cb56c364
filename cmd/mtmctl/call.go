package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// apiPackage is the package of the services `call` reaches.
const apiPackage = "mtm.v1"

// runCall calls one unary method of the API with a JSON request (the
// Connect/protojson mapping, field names as in the .proto or camelCase)
// and prints the JSON answer: every pharmacist step the API has, from the
// terminal, with the same access checks, validation and audit as any
// client. The method is looked up in the contract compiled into mtmctl.
func runCall(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "call", "<Service/Method> [JSON|-]   e.g. call CareService/AddAllergy '{\"patientId\":\"pt_…\",\"kind\":\"ALLERGY_KIND_ALLERGY\",\"substance\":\"Sulfa\"}'")
	r := addRemoteFlags(sys, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return errors.New("call: name one method, and optionally the request as JSON (or - for stdin)")
	}
	md, err := findMethod(pos[0])
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	body := "{}"
	if len(pos) == 2 {
		body = pos[1]
	}
	if body == "-" {
		b, err := io.ReadAll(io.LimitReader(sys.stdin, 4<<20))
		if err != nil {
			return fmt.Errorf("call: reading the request: %w", err)
		}
		body = string(b)
	}
	in := dynamicpb.NewMessage(md.Input())
	if err := protojson.Unmarshal([]byte(body), in); err != nil {
		return fmt.Errorf("call: the request is not a valid %s: %w", md.Input().FullName(), err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := callDynamic(ctx, sys, c, md, in)
	if err != nil {
		return explain("call "+pos[0], err)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(out)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	fmt.Fprintln(sys.stdout, string(b))
	return nil
}

// findMethod resolves "CareService/AddMedication" (or the full
// "mtm.v1.CareService/AddMedication") to a unary method of the API.
func findMethod(name string) (protoreflect.MethodDescriptor, error) {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "/"), apiPackage+".")
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		svc, method, ok = strings.Cut(name, ".")
	}
	if !ok || svc == "" || method == "" {
		return nil, fmt.Errorf("%q: name a method as Service/Method, e.g. CareService/AddMedication", name)
	}
	_ = mtmv1.File_mtm_v1_care_proto // the contract is registered by importing its generated code
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(apiPackage + "." + svc))
	if err != nil {
		return nil, fmt.Errorf("no service %s in %s", svc, apiPackage)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		var names []string
		for i := range sd.Methods().Len() {
			names = append(names, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("%s has no method %s (it has %s)", svc, method, strings.Join(names, ", "))
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("%s/%s is a stream: call takes unary methods only", svc, method)
	}
	return md, nil
}

// callDynamic makes one unary call with messages built from descriptors.
func callDynamic(ctx context.Context, sys system, c client, md protoreflect.MethodDescriptor, in *dynamicpb.Message) (*dynamicpb.Message, error) {
	procedure := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	cl := connect.NewClient[dynamicpb.Message, dynamicpb.Message](sys.http, c.server+procedure,
		connect.WithSchema(md), connect.WithInterceptors(c.auth),
		connect.WithResponseInitializer(func(spec connect.Spec, msg any) error {
			if m, ok := msg.(*dynamicpb.Message); ok {
				*m = *dynamicpb.NewMessage(md.Output())
			}
			return nil
		}))
	res, err := cl.CallUnary(ctx, connect.NewRequest(in))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

var exportFormats = map[string]mtmv1.ExportFormat{
	"pdf":  mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF,
	"fhir": mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON,
}

// runExport writes a patient's CMS PDF or FHIR Bundle to a file (0600: it
// is the patient's record).
func runExport(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "export", "<patient-id> --format pdf|fhir --out FILE")
	r := addRemoteFlags(sys, fs)
	format := fs.String("format", "pdf", "pdf (the CMS standardized format) or fhir (an R4 Bundle)")
	outPath := fs.String("out", "", "write the document to this `file`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("export: name one patient id")
	}
	f, ok := exportFormats[*format]
	if !ok {
		return fmt.Errorf("export: --format %q is not pdf or fhir", *format)
	}
	if err := required(map[string]string{"out": *outPath}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.ExportPatientRecord(ctx, connect.NewRequest(&mtmv1.ExportPatientRecordRequest{PatientId: pos[0], Format: f}))
	if err != nil {
		return explain("export", err)
	}
	if err := os.WriteFile(*outPath, res.Msg.GetContent(), 0o600); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(sys.stdout, "wrote %s (%s, %d bytes)\n", *outPath, res.Msg.GetContentType(), len(res.Msg.GetContent()))
	return nil
}
