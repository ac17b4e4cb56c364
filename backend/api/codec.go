package api

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// A request body that does not decode is refused like any other bad
// input: invalid_argument naming the field and what it should hold, with
// a google.rpc.BadRequest and a buf.validate.Violations detail, and no
// word of the server's Go or protobuf types. Connect reports a codec's
// error before any interceptor runs and wraps it in its own text, so the
// codecs below never fail: they leave the message empty, marked with the
// problem (an unknown field of a number no message uses), and the request
// check, or the error interceptor behind it, refuses it.

// Codecs returns the handler options that install the request codecs:
// protobuf binary and JSON (both Connect JSON content types).
func Codecs() []connect.HandlerOption { return codecs(nil) }

// codecs is Codecs whose protobuf codec encodes the answers it finds in
// answers from the encoding kept there (nil: none).
func codecs(answers *answerCache) []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(protoCodec{answers: answers}),
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
	}
}

// undecodableField is the field number that marks a message whose body
// did not decode (the largest field number protobuf allows).
const undecodableField protowire.Number = protowire.MaxValidNumber

type jsonCodec struct{ name string }

func (c jsonCodec) Name() string   { return c.name }
func (c jsonCodec) IsBinary() bool { return false }

func (c jsonCodec) Marshal(msg any) ([]byte, error) { return c.MarshalAppend(nil, msg) }

// MarshalAppend lets Connect encode an answer into its own pooled buffer.
func (jsonCodec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errors.New("json codec: not a protobuf message")
	}
	return protojson.MarshalOptions{}.MarshalAppend(dst, m)
}

// Unmarshal decodes a request strictly first: that refuses enum names the
// contract does not know (a lenient decoder takes them as unset). When
// that fails, the body is checked field by field for a problem a caller
// can fix; when there is none (only fields this server does not know,
// which are ignored), it is decoded again leniently.
func (c jsonCodec) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return errors.New("json codec: not a protobuf message")
	}
	if len(data) == 0 {
		markUndecodable(m, fieldProblem{message: "the request body is empty; send a JSON object"})
		return nil
	}
	if protojson.Unmarshal(data, m) == nil {
		return nil
	}
	if p, found := checkJSON(m.ProtoReflect().Descriptor(), data); found {
		markUndecodable(m, p)
		return nil
	}
	proto.Reset(m)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m); err != nil {
		markUndecodable(m, fieldProblem{message: "the request body is not valid JSON for this call"})
	}
	return nil
}

// protoCodec is the protobuf binary codec. An answer that carries a PML
// or plan its answers cache holds (GetMedicationList, GetActionPlan) is
// written with that part's kept encoding: the same bytes proto.Marshal writes, without encoding
// the rows again.
type protoCodec struct{ answers *answerCache }

func (protoCodec) Name() string   { return "proto" }
func (protoCodec) IsBinary() bool { return true }

func (c protoCodec) Marshal(msg any) ([]byte, error) { return c.MarshalAppend(nil, msg) }

// MarshalAppend lets Connect encode an answer into its own pooled buffer
// rather than a new one per call.
func (c protoCodec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	switch r := msg.(type) {
	case *mtmv1.GetMedicationListResponse:
		if a := r.GetMedicationList(); a != nil {
			if enc := c.answers.encoded(a.GetPatientId(), answerPML, a); enc != nil {
				return appendWithEncoded(dst, r, pmlField, enc)
			}
		}
	case *mtmv1.GetActionPlanResponse:
		if a := r.GetActionPlan(); a != nil {
			if enc := c.answers.encoded(a.GetPatientId(), answerPlan, a); enc != nil {
				return appendWithEncoded(dst, r, planField, enc)
			}
		}
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errors.New("proto codec: not a protobuf message")
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// The answer fields written from kept encodings (both field 1).
var (
	pmlField  = (&mtmv1.GetMedicationListResponse{}).ProtoReflect().Descriptor().Fields().ByName("medication_list")
	planField = (&mtmv1.GetActionPlanResponse{}).ProtoReflect().Descriptor().Fields().ByName("action_plan")
)

// appendWithEncoded appends m's encoding with field f (a message field
// whose encoding is enc) written from enc: proto.Marshal writes known
// fields in field-number order and unknown ones last, and so does this
// when f is the message's first field.
func appendWithEncoded(dst []byte, m proto.Message, f protoreflect.FieldDescriptor, enc []byte) ([]byte, error) {
	dst = protowire.AppendTag(dst, f.Number(), protowire.BytesType)
	dst = protowire.AppendBytes(dst, enc)
	src := m.ProtoReflect()
	rest := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != f {
			rest.Set(fd, v)
		}
		return true
	})
	rest.SetUnknown(src.GetUnknown())
	return proto.MarshalOptions{}.MarshalAppend(dst, rest.Interface())
}

func (protoCodec) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return errors.New("proto codec: not a protobuf message")
	}
	if proto.Unmarshal(data, m) != nil {
		markUndecodable(m, fieldProblem{message: "the request body is not a valid protobuf encoding of this call's request"})
	}
	return nil
}

// fieldProblem is one thing wrong with a request: the field (as a path of
// proto field names, "" for the body as a whole) and what it should hold.
type fieldProblem struct {
	field   string
	message string
}

func (p fieldProblem) text() string {
	if p.field == "" {
		return p.message
	}
	return p.field + ": " + p.message
}

// markUndecodable empties m and records p in it.
func markUndecodable(m proto.Message, p fieldProblem) {
	proto.Reset(m)
	raw := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	raw = protowire.AppendString(raw, truncate(p.field, 128)+"\x00"+truncate(p.message, maxViolationMessage))
	m.ProtoReflect().SetUnknown(raw)
}

// undecodable returns the refusal for a message a codec marked, or nil.
func undecodable(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	raw := m.ProtoReflect().GetUnknown()
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil
		}
		raw = raw[n:]
		if num == undecodableField && typ == protowire.BytesType {
			s, n := protowire.ConsumeString(raw)
			if n < 0 {
				return nil
			}
			field, message, _ := strings.Cut(s, "\x00")
			return badRequest(fieldProblem{field: field, message: message})
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return nil
		}
		raw = raw[n:]
	}
	return nil
}

// decodedConn refuses stream messages a codec could not decode.
type decodedConn struct {
	connect.StreamingHandlerConn
}

func (c decodedConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return undecodable(msg)
}

// refuseUndecodable is the backstop for services served without the
// request check: the error interceptor refuses marked messages too.
func refuseUndecodable(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			if err := undecodable(req.Any()); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}
