// Command appimage turns the buf image of the API contract into the image
// app clients are generated from (TypeScript in proto/gen/ts, and the
// Kotlin and Swift templates): the same services and messages without
// their validation rules, so that apps do not ship the rule types of
// buf.validate (most of a web bundle's size) for checks only the server
// makes.
//
// It reads a binary buf image (buf build -o -) on stdin and writes one on
// stdout in which
//
//   - every buf.validate option (field, message, oneof: extension 1159) is
//     removed from the mtm.v1 files, and their imports of
//     buf/validate/validate.proto and mtm/v1/rules.proto with them;
//   - mtm/v1/rules.proto (predefined rules, nothing an app sends or reads)
//     is left out;
//   - buf/validate/validate.proto keeps only the error detail an
//     invalid_argument carries (Violations, Violation, FieldPath,
//     FieldPathElement), without FieldPathElement's descriptor-type fields
//     (3-5), which a decoder then skips as unknown fields;
//   - google/rpc/error_details.proto is added with only ErrorInfo, the
//     detail that carries a refusal's reason.
//
// Field numbers, names and types of everything kept are unchanged, so the
// wire format is the contract's.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

const (
	validateFile = "buf/validate/validate.proto"
	rulesFile    = "mtm/v1/rules.proto"
	errorFile    = "google/rpc/error_details.proto"

	// validateOption is the field number of buf.validate.field, .message
	// and .oneof on the descriptor options; predefinedOption marks the
	// predefined rules (only in rules.proto).
	validateOption   = 1159
	predefinedOption = 1160
	// imageFileExtension is buf's per-file extension (is_import, ...).
	imageFileExtension = 8042
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	out, err := strip(in)
	if err != nil {
		fail(err)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "appimage:", err)
	os.Exit(1)
}

// strip rewrites a binary image as the package comment says.
func strip(image []byte) ([]byte, error) {
	var set descriptorpb.FileDescriptorSet
	// An empty resolver keeps every extension (buf.validate options, buf's
	// image extension) as unknown fields, which strip edits as bytes.
	if err := (proto.UnmarshalOptions{Resolver: new(protoregistry.Types)}).Unmarshal(image, &set); err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	var files []*descriptorpb.FileDescriptorProto
	sawValidate := false
	for _, f := range set.GetFile() {
		switch name := f.GetName(); {
		case name == rulesFile:
			continue
		case name == validateFile:
			if err := pruneValidate(f); err != nil {
				return nil, err
			}
			sawValidate = true
		case name == errorFile:
			return nil, fmt.Errorf("%s is already in the image", errorFile)
		case len(name) > 7 && name[:7] == "mtm/v1/":
			dropOptions(f.ProtoReflect())
			f.Dependency = slices.DeleteFunc(f.Dependency, func(d string) bool { return d == validateFile || d == rulesFile })
			if len(f.PublicDependency) > 0 || len(f.WeakDependency) > 0 {
				return nil, fmt.Errorf("%s: public or weak imports are not handled", name)
			}
			// Dependency indexes in buf's extension (unused imports) no
			// longer hold; the file is generated either way.
			f.ProtoReflect().SetUnknown(dropFields(f.ProtoReflect().GetUnknown(), imageFileExtension))
			f.SourceCodeInfo = pruneSourceInfo(f.GetSourceCodeInfo())
		}
		files = append(files, f)
	}
	if !sawValidate {
		return nil, fmt.Errorf("%s is not in the image", validateFile)
	}
	files = append(files, errorInfoFile())
	set.File = files
	return proto.MarshalOptions{Deterministic: true}.Marshal(&set)
}

// pruneValidate keeps the error-detail messages of validate.proto.
func pruneValidate(f *descriptorpb.FileDescriptorProto) error {
	keep := []string{"Violations", "Violation", "FieldPath", "FieldPathElement"}
	var msgs []*descriptorpb.DescriptorProto
	for _, m := range f.GetMessageType() {
		if slices.Contains(keep, m.GetName()) {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) != len(keep) {
		return fmt.Errorf("%s: expected messages %v", validateFile, keep)
	}
	for _, m := range msgs {
		if m.GetName() != "FieldPathElement" {
			continue
		}
		m.Field = slices.DeleteFunc(m.Field, func(fd *descriptorpb.FieldDescriptorProto) bool {
			n := fd.GetNumber()
			return n >= 3 && n <= 5 // field_type, key_type, value_type
		})
		for _, fd := range m.Field {
			if fd.GetTypeName() != "" && fd.GetType() == descriptorpb.FieldDescriptorProto_TYPE_ENUM {
				return fmt.Errorf("%s: FieldPathElement.%s still refers to %s", validateFile, fd.GetName(), fd.GetTypeName())
			}
		}
	}
	f.MessageType = msgs
	f.EnumType = nil
	f.Extension = nil
	f.Service = nil
	f.Dependency = nil
	f.PublicDependency = nil
	f.WeakDependency = nil
	f.SourceCodeInfo = nil
	// Still an import of the contract: rewrite buf's extension to say only
	// that (its unused-import indexes referred to the old imports).
	ext := protowire.AppendTag(nil, 1, protowire.VarintType)
	ext = protowire.AppendVarint(ext, 1)
	u := dropFields(f.ProtoReflect().GetUnknown(), imageFileExtension)
	u = protowire.AppendTag(u, imageFileExtension, protowire.BytesType)
	u = protowire.AppendBytes(u, ext)
	f.ProtoReflect().SetUnknown(u)
	return nil
}

// errorInfoFile is google/rpc/error_details.proto with only ErrorInfo.
func errorInfoFile() *descriptorpb.FileDescriptorProto {
	f := protodesc.ToFileDescriptorProto(errdetails.File_google_rpc_error_details_proto)
	f.MessageType = slices.DeleteFunc(f.MessageType, func(m *descriptorpb.DescriptorProto) bool { return m.GetName() != "ErrorInfo" })
	f.Dependency = nil
	f.SourceCodeInfo = nil
	return f
}

// dropOptions removes the buf.validate options from every options message
// in m, recursively.
func dropOptions(m protoreflect.Message) {
	if isOptions(m.Descriptor()) {
		m.SetUnknown(dropFields(m.GetUnknown(), validateOption, predefinedOption))
	}
	var empty []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				dropOptions(v.List().Get(i).Message())
			}
		case fd.IsMap():
		default:
			dropOptions(v.Message())
			if isOptions(fd.Message()) && proto.Size(v.Message().Interface()) == 0 {
				empty = append(empty, fd) // nothing but validation rules was set
			}
		}
		return true
	})
	for _, fd := range empty {
		m.Clear(fd)
	}
}

// isOptions reports whether d is one of descriptor.proto's options messages.
func isOptions(d protoreflect.MessageDescriptor) bool {
	return d.ParentFile().Package() == "google.protobuf" && strings.HasSuffix(string(d.Name()), "Options")
}

// pruneSourceInfo drops the locations of removed options and imports
// (their comments would otherwise be attached to nothing).
func pruneSourceInfo(info *descriptorpb.SourceCodeInfo) *descriptorpb.SourceCodeInfo {
	if info == nil {
		return nil
	}
	info.Location = slices.DeleteFunc(info.Location, func(l *descriptorpb.SourceCodeInfo_Location) bool {
		p := l.GetPath()
		if len(p) > 0 && p[0] == 3 { // dependency
			return true
		}
		return slices.Contains(p, validateOption)
	})
	return info
}

// dropFields removes the fields numbered nums from raw wire bytes.
func dropFields(b []byte, nums ...protowire.Number) []byte {
	var out []byte
	for len(b) > 0 {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return append(out, b...) // malformed: leave as is
		}
		if !slices.Contains(nums, num) {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}
