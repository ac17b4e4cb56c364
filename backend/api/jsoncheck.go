package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkJSON looks for the first field of a JSON request body that cannot
// hold what was sent, walking the body along the message's descriptor the
// way protojson reads it (JSON or proto field names, null for unset,
// unknown fields ignored). It reports the field by its proto name path
// ("quiet_hours.start_minute") and what the field expects, in the
// contract's words: "a string", an enum's value names, a timestamp's
// format. found is false when it sees nothing wrong.
func checkJSON(md protoreflect.MessageDescriptor, data []byte) (p fieldProblem, found bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fieldProblem{message: "the request body is not valid JSON (" + jsonSyntax(err) + ")"}, true
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldProblem{message: "the request body holds more than one JSON value"}, true
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fieldProblem{message: "the request body must be a JSON object, not " + jsonKind(v)}, true
	}
	return checkObject(md, obj, "")
}

// jsonSyntax describes a JSON syntax error without Go's type names.
func jsonSyntax(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return "it ends too early"
	}
	return "it cannot be parsed"
}

func checkObject(md protoreflect.MessageDescriptor, obj map[string]any, path string) (fieldProblem, bool) {
	oneofSet := map[protoreflect.FullName]string{}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		v, ok := obj[fd.JSONName()]
		if !ok {
			v, ok = obj[string(fd.Name())]
		} else if _, both := obj[string(fd.Name())]; both && fd.JSONName() != string(fd.Name()) {
			return fieldProblem{field: joinPath(path, string(fd.Name())), message: "is set twice (as " + fd.JSONName() + " and " + string(fd.Name()) + ")"}, true
		}
		if !ok || (v == nil && !isValue(fd)) {
			continue
		}
		name := joinPath(path, string(fd.Name()))
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other, dup := oneofSet[od.FullName()]; dup {
				return fieldProblem{field: name, message: "only one of " + other + " and " + string(fd.Name()) + " may be set"}, true
			}
			oneofSet[od.FullName()] = string(fd.Name())
		}
		if p, found := checkField(fd, v, name); found {
			return p, true
		}
	}
	return fieldProblem{}, false
}

func checkField(fd protoreflect.FieldDescriptor, v any, path string) (fieldProblem, bool) {
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return fieldProblem{field: path, message: "must be a JSON object, not " + jsonKind(v)}, true
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			at := fmt.Sprintf("%s[%q]", path, truncate(k, 32))
			if msg, ok := checkMapKey(fd.MapKey(), k); !ok {
				return fieldProblem{field: at, message: msg}, true
			}
			if obj[k] == nil && !isValue(fd.MapValue()) {
				return fieldProblem{field: at, message: "must not be null"}, true
			}
			if p, found := checkSingular(fd.MapValue(), mapValueRules(fd), obj[k], at); found {
				return p, true
			}
		}
		return fieldProblem{}, false
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return fieldProblem{field: path, message: "must be a JSON list, not " + jsonKind(v)}, true
		}
		for i, e := range list {
			at := fmt.Sprintf("%s[%d]", path, i)
			if e == nil && !isValue(fd) {
				return fieldProblem{field: at, message: "must not be null"}, true
			}
			if p, found := checkSingular(fd, itemRules(fd), e, at); found {
				return p, true
			}
		}
		return fieldProblem{}, false
	}
	return checkSingular(fd, fieldRules(fd), v, path)
}

// checkSingular checks one value of fd's kind; rules are the field's
// buf.validate rules for that value (they say which enum names are
// allowed).
func checkSingular(fd protoreflect.FieldDescriptor, rules *validate.FieldRules, v any, path string) (fieldProblem, bool) {
	bad := func(msg string) (fieldProblem, bool) { return fieldProblem{field: path, message: msg}, true }
	switch fd.Kind() {
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			return bad("must be a string, not " + jsonKind(v))
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok || !isBase64(s) {
			return bad("must be a base64-encoded string")
		}
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return bad("must be true or false, not " + jsonKind(v))
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if !isInteger(v, math.MinInt32, math.MaxInt32) {
			return bad("must be a whole number from -2147483648 to 2147483647")
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if !isInteger(v, 0, math.MaxUint32) {
			return bad("must be a whole number from 0 to 4294967295")
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if !isInteger(v, math.MinInt64, math.MaxInt64) {
			return bad("must be a whole number (a JSON number or a decimal string)")
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if !isInteger(v, 0, math.MaxUint64) {
			return bad("must be a whole number of at least 0 (a JSON number or a decimal string)")
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if !isFloat(v) {
			return bad("must be a number")
		}
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return fieldProblem{}, false
		}
		switch x := v.(type) {
		case string:
			if fd.Enum().Values().ByName(protoreflect.Name(x)) == nil {
				return bad(fmt.Sprintf("unknown value %q; must be one of %s", truncate(x, 64), strings.Join(allowedEnumNames(fd.Enum(), rules), ", ")))
			}
		case json.Number:
			if !isInteger(x, math.MinInt32, math.MaxInt32) {
				return bad("must be one of " + strings.Join(allowedEnumNames(fd.Enum(), rules), ", "))
			}
		default:
			return bad("must be one of " + strings.Join(allowedEnumNames(fd.Enum(), rules), ", "))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessageValue(fd.Message(), v, path)
	}
	return fieldProblem{}, false
}

// durationPattern is protojson's form of a google.protobuf.Duration.
var durationPattern = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,9})?s$`)

func checkMessageValue(md protoreflect.MessageDescriptor, v any, path string) (fieldProblem, bool) {
	bad := func(msg string) (fieldProblem, bool) { return fieldProblem{field: path, message: msg}, true }
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		s, ok := v.(string)
		if !ok {
			return bad("must be a timestamp string in RFC 3339 form, such as \"2026-11-30T17:05:00Z\", not " + jsonKind(v))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return bad(fmt.Sprintf("%q is not a timestamp; use RFC 3339 with a time and a zone, such as \"2026-11-30T17:05:00Z\"", truncate(s, 40)))
		}
		return fieldProblem{}, false
	case "google.protobuf.Duration":
		s, ok := v.(string)
		if !ok || !durationPattern.MatchString(s) {
			return bad("must be a duration in seconds written as a string, such as \"90s\" or \"1.5s\"")
		}
		return fieldProblem{}, false
	case "google.protobuf.Value", "google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.FieldMask", "google.protobuf.Empty":
		return fieldProblem{}, false
	}
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") && strings.HasSuffix(string(md.Name()), "Value") {
		// Wrappers are written as their value.
		if vf := md.Fields().ByName("value"); vf != nil {
			return checkSingular(vf, nil, v, path)
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return bad("must be a JSON object, not " + jsonKind(v))
	}
	return checkObject(md, obj, path)
}

func checkMapKey(fd protoreflect.FieldDescriptor, k string) (string, bool) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return "keys must be true or false", k == "true" || k == "false"
	case protoreflect.StringKind:
		return "", true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		_, err := strconv.ParseUint(k, 10, keyBits(fd))
		return "keys must be whole numbers of at least 0", err == nil
	default:
		_, err := strconv.ParseInt(k, 10, keyBits(fd))
		return "keys must be whole numbers", err == nil
	}
}

// isValue reports whether fd holds google.protobuf.Value, the one type
// for which JSON null is a value rather than "unset".
func isValue(fd protoreflect.FieldDescriptor) bool {
	return fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Value"
}

func isInteger(v any, lo, hi float64) bool {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return float64(i) >= lo && float64(i) <= hi
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return float64(u) >= lo && float64(u) <= hi
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == math.Trunc(f) && f >= lo && f <= hi
}

func isFloat(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case string:
		if x == "NaN" || x == "Infinity" || x == "-Infinity" {
			return true
		}
		_, err := strconv.ParseFloat(x, 64)
		return err == nil
	}
	return false
}

func isBase64(s string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "another type"
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldRules, itemRules and mapValueRules return the buf.validate rules
// for a field's value, a list's items and a map's values.
func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

func itemRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	return fieldRules(fd).GetRepeated().GetItems()
}

func mapValueRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	return fieldRules(fd).GetMap().GetValues()
}

// allowedEnumNames lists the names of ed's values that rules allow (all
// of them when rules say nothing).
func allowedEnumNames(ed protoreflect.EnumDescriptor, rules *validate.FieldRules) []string {
	er := rules.GetEnum()
	in, notIn := er.GetIn(), er.GetNotIn()
	var names []string
	vals := ed.Values()
	for i := range vals.Len() {
		n := int32(vals.Get(i).Number())
		if (len(in) > 0 && !slices.Contains(in, n)) || slices.Contains(notIn, n) {
			continue
		}
		names = append(names, string(vals.Get(i).Name()))
	}
	return names
}

func keyBits(fd protoreflect.FieldDescriptor) int {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return 32
	}
	return 64
}
