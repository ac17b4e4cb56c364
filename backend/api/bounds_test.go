package api_test

import (
	"fmt"
	"slices"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// contractMethods returns every method of every mtm.v1 service, found
// through the registry the generated code fills, so that a new file,
// service or method is covered without touching this test.
func contractMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("mtm.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			ms := fd.Services().Get(i).Methods()
			for j := range ms.Len() {
				out = append(out, ms.Get(j))
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no mtm.v1 methods registered")
	}
	slices.SortFunc(out, func(a, b protoreflect.MethodDescriptor) int {
		return compareStrings(string(a.FullName()), string(b.FullName()))
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// requestFields calls fn for every field of every message a request can
// carry: the methods' input messages and, transitively, the messages
// they contain. path is how a client would name the field.
func requestFields(t *testing.T, fn func(path string, fd protoreflect.FieldDescriptor)) {
	t.Helper()
	seen := map[protoreflect.FullName]bool{}
	var walk func(prefix string, md protoreflect.MessageDescriptor)
	walk = func(prefix string, md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			path := prefix + string(fd.Name())
			fn(path, fd)
			switch {
			case fd.IsMap():
				if m := fd.MapValue().Message(); m != nil {
					walk(path+"[].", m)
				}
			case fd.Message() != nil:
				walk(path+".", fd.Message())
			}
		}
	}
	for _, m := range contractMethods(t) {
		walk(string(m.Input().FullName())+".", m.Input())
	}
}

// fieldRules returns the protovalidate rules of a field (nil if none).
func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

// TestEveryRequestListAndStringIsBounded walks the contract: every
// repeated field, map, string and bytes field a request can carry must
// have an upper bound in its protovalidate rules, so that the cost of
// validating (and refusing) any request is bounded by the contract rather
// than by what a client chose to send. A new list or text field without a
// bound fails here.
func TestEveryRequestListAndStringIsBounded(t *testing.T) {
	n := 0
	requestFields(t, func(path string, fd protoreflect.FieldDescriptor) {
		if fd.ContainingMessage().ParentFile().Package() != "mtm.v1" {
			return // well-known types (Timestamp) carry no lists or text
		}
		n++
		r := fieldRules(fd)
		if r.GetIgnore() == validate.Ignore_IGNORE_ALWAYS {
			t.Errorf("%s: validation is switched off", path)
			return
		}
		switch {
		case fd.IsMap():
			if !r.GetMap().HasMaxPairs() {
				t.Errorf("%s: map without (buf.validate.field).map.max_pairs", path)
			}
			return
		case fd.IsList():
			if !r.GetRepeated().HasMaxItems() {
				t.Errorf("%s: repeated field without (buf.validate.field).repeated.max_items", path)
			}
			r = r.GetRepeated().GetItems() // the rules of each element
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			s := r.GetString()
			if !s.HasMaxLen() && !s.HasLen() && !s.HasMaxBytes() {
				t.Errorf("%s: string without (buf.validate.field).string.max_len", path)
			}
		case protoreflect.BytesKind:
			b := r.GetBytes()
			if !b.HasMaxLen() && !b.HasLen() {
				t.Errorf("%s: bytes without (buf.validate.field).bytes.max_len", path)
			}
		}
	})
	if n < 100 {
		t.Fatalf("walked only %d request fields; the walk is broken", n)
	}
	t.Log(fmt.Sprintf("%d request fields checked", n))
}
