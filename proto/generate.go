// Package proto holds the API contract (mtm/v1/*.proto) and the pinned tools
// that turn it into Go under proto/gen. Regenerate with
//
//	go generate ./proto
//
// which lints the contract, checks the vendored protovalidate rules against
// the pinned module, and rewrites proto/gen from scratch: Go beside the
// contract, TypeScript for apps under proto/gen/ts (the pinned protoc-gen-es
// of proto/tools/package-lock.json, installed by npm ci; the contract
// without its validation rules, see proto/appimage).
package proto

//go:generate sh -c "cd .. && go tool -modfile=proto/tools/go.mod buf lint"
//go:generate sh -c "cd .. && cmp proto/third_party/buf/validate/validate.proto $(go mod download -modfile=proto/tools/go.mod -json github.com/bufbuild/protovalidate | sed -n 's/.*\"Dir\": \"\\(.*\\)\",/\\1/p')/proto/protovalidate/buf/validate/validate.proto"
//go:generate sh -c "cd .. && rm -rf proto/gen && go tool -modfile=proto/tools/go.mod buf generate"
//go:generate sh -c "cd .. && sh proto/tools/generate-ts.sh"
