#!/bin/sh
# Generates proto/gen/ts from the contract with the pinned protoc-gen-es
# (proto/tools/package-lock.json): the buf image of the contract, stripped
# of its validation rules by proto/appimage, through buf.gen.ts.yaml.
# Run from the repository root (go generate ./proto does).
set -eu
(cd proto/tools && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool -modfile=proto/tools/go.mod buf build -o "$tmp/contract.binpb"
go run ./proto/appimage < "$tmp/contract.binpb" > "$tmp/ts.binpb"
go tool -modfile=proto/tools/go.mod buf generate "$tmp/ts.binpb" --template buf.gen.ts.yaml
