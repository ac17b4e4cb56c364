package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The default --max-request-bytes of mtmd, and the answer size and
// allocation every refusal must stay under.
const (
	worstRequestBytes = 1 << 20
	maxRefusalBytes   = 16 << 10
	// maxAllocPerRequestByte bounds what the server allocates to refuse a
	// request, as a multiple of the request's size. Refusing adds next to
	// nothing; what remains is decoding, which connect-go does before any
	// interceptor runs: a list of scalars costs 3-15 bytes per byte
	// received, a list of 500,000 empty messages (two bytes each on the
	// wire) about 75. Before the limits, validation alone allocated over
	// 100 times the request and answered with 80 MB.
	maxAllocPerRequestByte = 96
	// allocSlack covers the fixed cost of any call (HTTP/2 stream, headers,
	// token verification, interceptors), whatever the body.
	allocSlack = 512 << 10
)

// worstCase is one hostile request: a method and a message filling
// --max-request-bytes with values every rule refuses.
type worstCase struct {
	method protoreflect.MethodDescriptor
	what   string
	msg    proto.Message
	// list is set for a list filled with bad values; otherwise the case
	// is a long text, or (for a request with neither) unknown fields, which
	// protobuf decoders skip and which may then be served.
	list bool
}

// worstCases builds, for every method of the contract, the largest list it
// takes filled with bad values (for methods with lists), and its first
// text field filled with a bidi override (for every method with text).
func worstCases(t *testing.T, limit int, size func(proto.Message) int, listsOnly bool) []worstCase {
	t.Helper()
	var out []worstCase
	for _, m := range contractMethods(t) {
		in := m.Input()
		added := false
		fields := in.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.IsList() {
				out = append(out, worstCase{m, string(fd.Name()) + " list", fillList(in, fd, limit, size), true})
				added = true
			}
		}
		if listsOnly {
			continue
		}
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Kind() == protoreflect.StringKind && !fd.IsList() {
				out = append(out, worstCase{m, string(fd.Name()) + " text", fillString(in, fd, limit, size), false})
				added = true
				break
			}
		}
		if !added {
			// Nothing can grow (an empty request): send it with unknown
			// fields instead, which the decoder must skip.
			msg := newMessage(in)
			msg.SetUnknown(protowire(limit - 16))
			out = append(out, worstCase{m, "unknown fields", msg.Interface(), false})
		}
	}
	return out
}

// newMessage returns an empty message of the generated type of md.
func newMessage(md protoreflect.MessageDescriptor) protoreflect.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		panic(err)
	}
	return mt.New()
}

// protowire returns an unknown length-delimited field 15 of about n bytes.
func protowire(n int) []byte {
	b := []byte{15<<3 | 2}
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, bytes.Repeat([]byte{'x'}, n)...)
}

// fillList returns a message of type md whose list fd holds as many bad
// elements as fit in limit bytes.
func fillList(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, limit int, size func(proto.Message) int) proto.Message {
	build := func(n int) proto.Message {
		msg := newMessage(md)
		l := msg.Mutable(fd).List()
		for i := range n {
			l.Append(badElement(l, fd, i))
		}
		return msg.Interface()
	}
	// The size grows linearly with n: measure two points, aim just under
	// the limit, then step down until it fits.
	a, b := size(build(64)), size(build(128))
	n := 64 + (limit-a)*64/(b-a)
	msg := build(n)
	for size(msg) > limit {
		n -= n/1000 + 1
		msg = build(n)
	}
	return msg
}

// badElement is a list element no rule of the contract accepts.
func badElement(l protoreflect.List, fd protoreflect.FieldDescriptor, i int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(99999)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-1)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(99))
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("\u202e")
	case protoreflect.MessageKind:
		return l.NewElement() // an empty element: its required fields are missing
	}
	panic(fmt.Sprintf("no bad element for %s", fd.Kind()))
}

// fillString returns a message of type md whose text field fd is a run of
// right-to-left overrides filling limit bytes.
func fillString(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, limit int, size func(proto.Message) int) proto.Message {
	unit := "\u202e"
	per := size(withString(md, fd, unit)) // one unit plus the framing
	n := (limit - per) / (size(withString(md, fd, unit+unit)) - per)
	return withString(md, fd, strings.Repeat(unit, n))
}

func withString(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, s string) proto.Message {
	msg := newMessage(md)
	msg.Set(fd, protoreflect.ValueOfString(s))
	return msg.Interface()
}

// wireProtocol is one way of putting a request on the wire.
type wireProtocol struct {
	name string
	size func(proto.Message) int
	// request returns the body and content type for a unary or streaming
	// call of m.
	request func(m proto.Message, streaming bool) ([]byte, string)
}

func envelope(payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

var wireProtocols = []wireProtocol{
	{"connect+proto", func(m proto.Message) int { return proto.Size(m) }, func(m proto.Message, streaming bool) ([]byte, string) {
		b, _ := proto.Marshal(m)
		if streaming {
			return envelope(b), "application/connect+proto"
		}
		return b, "application/proto"
	}},
	{"connect+json", func(m proto.Message) int { b, _ := protojson.Marshal(m); return len(b) }, func(m proto.Message, streaming bool) ([]byte, string) {
		b, _ := protojson.Marshal(m)
		if streaming {
			return envelope(b), "application/connect+json"
		}
		return b, "application/json"
	}},
	{"grpc", func(m proto.Message) int { return proto.Size(m) }, func(m proto.Message, _ bool) ([]byte, string) {
		b, _ := proto.Marshal(m)
		return envelope(b), "application/grpc"
	}},
}

// refusal is what the server answered to a hostile request.
type refusal struct {
	code      string
	bytes     int // status line aside: headers, body and trailers
	allocated uint64
	took      time.Duration
}

// sendRaw posts body to the method's path as token and measures the answer
// and what the process allocated meanwhile.
func sendRaw(t *testing.T, e *env, m protoreflect.MethodDescriptor, p wireProtocol, body []byte, contentType, token string) refusal {
	t.Helper()
	path := fmt.Sprintf("%s/%s/%s", e.srv.URL, m.Parent().FullName(), m.Name())
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if p.name == "grpc" {
		req.Header.Set("TE", "trailers")
	} else if !m.IsStreamingServer() {
		req.Header.Set("Connect-Protocol-Version", "1")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	r := refusal{bytes: len(answer) + headerBytes(res.Header) + headerBytes(res.Trailer), allocated: after.TotalAlloc - before.TotalAlloc, took: took}
	r.code = answerCode(t, p, m, res, answer)
	return r
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// answerCode reads the Connect or gRPC error code of an answer ("ok" if
// the call succeeded).
func answerCode(t *testing.T, p wireProtocol, m protoreflect.MethodDescriptor, res *http.Response, body []byte) string {
	t.Helper()
	switch {
	case p.name == "grpc":
		s := res.Trailer.Get("Grpc-Status")
		if s == "" {
			s = res.Header.Get("Grpc-Status")
		}
		var c connect.Code
		if err := c.UnmarshalText([]byte(grpcCodeName(s))); err != nil {
			return "grpc-status " + s
		}
		return c.String()
	case m.IsStreamingServer():
		// The last envelope is the end-of-stream message with the error.
		for len(body) >= 5 {
			n := binary.BigEndian.Uint32(body[1:5])
			flags, payload := body[0], body[5:5+n]
			body = body[5+n:]
			if flags&2 != 0 {
				var end struct {
					Error *struct{ Code string } `json:"error"`
				}
				if err := json.Unmarshal(payload, &end); err != nil {
					t.Fatalf("end of stream: %v", err)
				}
				if end.Error != nil {
					return end.Error.Code
				}
			}
		}
		return "ok"
	case res.StatusCode == http.StatusOK:
		return "ok"
	}
	var e struct{ Code string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("status %d, body %.200q: %v", res.StatusCode, body, err)
	}
	return e.Code
}

func grpcCodeName(status string) string {
	var n int
	if _, err := fmt.Sscanf(status, "%d", &n); err != nil {
		return status
	}
	return connect.Code(n).String()
}

// TestWorstRequestIsCheapToRefuse sends every method its worst request
// under the default --max-request-bytes (1 MiB), over Connect binary,
// Connect JSON and gRPC, from the callers the issue names: a caregiver who
// just signed up and holds no grant and, where the role gate refuses them,
// a pharmacist whose request reaches validation. Each must be refused
// before any handler runs, with an answer under 16 KB and an allocation
// bounded by a small multiple of the request size.
//
//	go test -run TestWorstRequestIsCheapToRefuse -v ./backend/api
func TestWorstRequestIsCheapToRefuse(t *testing.T) {
	e := newEnvReadMax(t, boltStore(t), worstRequestBytes)
	rph := e.pharmacy("ph_w", "rph@w.test")
	wanda := e.enroll(rph, "Wanda")
	// Sign-up needs an invite: the stranger is a caregiver whose grant the
	// patient revoked at once, so they hold none.
	cg := e.caregiver(wanda, "stranger@w.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
	if _, err := e.patientClient(wanda.token).RevokeCaregiver(context.Background(), connect.NewRequest(&mtmv1.RevokeCaregiverRequest{
		PatientId: wanda.id, GrantId: cg.grant})); err != nil {
		t.Fatal(err)
	}
	stranger := cg.token

	// The limit leaves room for the envelope and for Connect's framing.
	limit := worstRequestBytes - 64
	var worst refusal
	var worstName string
	protocols := wireProtocols
	if raceEnabled {
		// Under the race detector each 1 MiB decode takes seconds: keep
		// the lists over one protocol, which the run without it covers in full.
		protocols = protocols[:1]
	}
	for _, p := range protocols {
		// Text and unknown fields take the same path on every protocol.
		for _, c := range worstCases(t, limit, p.size, p.name != "connect+proto" || raceEnabled) {
			name := fmt.Sprintf("%s/%s/%s", p.name, c.method.Name(), c.what)
			body, ctype := p.request(c.msg, c.method.IsStreamingServer())
			if len(body) > worstRequestBytes {
				t.Fatalf("%s: built %d bytes, over the limit", name, len(body))
			}
			callers := []string{stranger, rph}
			if c.method.Parent().Name() == "AuthService" {
				callers = []string{""}
			}
			for i, token := range callers {
				r := sendRaw(t, e, c.method, p, body, ctype, token)
				if r.code == "permission_denied" && i+1 < len(callers) {
					continue // the role gate refused it; try a caller who reaches validation
				}
				if c.what != "unknown fields" && r.code != "invalid_argument" && r.code != "permission_denied" {
					t.Errorf("%s: answered %s, want invalid_argument", name, r.code)
				}
				if r.bytes > maxRefusalBytes {
					t.Errorf("%s: answer of %d bytes, want under %d", name, r.bytes, maxRefusalBytes)
				}
				if ratio := float64(r.allocated) / float64(len(body)); r.allocated > allocSlack && ratio > maxAllocPerRequestByte {
					t.Errorf("%s: allocated %d bytes for a %d-byte request (%.1f per byte), want at most %d per byte",
						name, r.allocated, len(body), ratio, maxAllocPerRequestByte)
				}
				if r.allocated > worst.allocated {
					worst, worstName = r, fmt.Sprintf("%s (%d-byte request, %s)", name, len(body), r.code)
				}
				if c.method.Name() == "SetDoseSchedule" && strings.HasPrefix(c.what, "times_of_day") {
					t.Logf("%s (%d-byte request): %s, %d-byte answer, allocated %.1f MB (%.2f per request byte), %v",
						name, len(body), r.code, r.bytes, float64(r.allocated)/1e6, float64(r.allocated)/float64(len(body)), r.took)
				}
				break
			}
		}
	}
	t.Logf("most allocation: %s: %d-byte answer, allocated %.1f MB, %v", worstName, worst.bytes, float64(worst.allocated)/1e6, worst.took)
}
