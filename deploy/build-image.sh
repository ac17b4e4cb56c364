#!/usr/bin/env bash
# Builds the mtmd container image with buildah from deploy/Containerfile:
#
#   deploy/build-image.sh [TAG]        (default mtmd:dev)
#
# The binary is built here (static: CGO_ENABLED=0) and copied with the CA
# bundle and a nonroot user into an image FROM scratch, so nothing is pulled
# from a registry. Then the image is checked: it runs as 65532, has no
# shell, and its binary starts (`mtmd --help`). Needs Go, buildah and the
# Debian ca-certificates bundle; runs as root (buildah's chroot isolation on
# the vfs storage driver, which works inside containers).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-mtmd:dev}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
bah=(buildah --storage-driver vfs)

root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/var/lib/mtm" "$root/tmp"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$root/usr/local/bin/mtmd" ./cmd/mtmd
if ldd "$root/usr/local/bin/mtmd" >/dev/null 2>&1; then
  echo "mtmd is not a static binary" >&2
  exit 1
fi
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/mtm:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chown -R 65532:65532 "$root/var/lib/mtm"
chmod 1777 "$root/tmp"
cp deploy/Containerfile "$ctx/Containerfile"

"${bah[@]}" bud --isolation chroot --layers=false -f "$ctx/Containerfile" -t "$tag" "$ctx"

user="$("${bah[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
[ "$user" = "65532:65532" ] || { echo "image user is '$user', want 65532:65532" >&2; exit 1; }
ctr="$("${bah[@]}" from "$tag")"
trap '"${bah[@]}" rm "$ctr" >/dev/null; rm -rf "$ctx"' EXIT
if "${bah[@]}" run --isolation chroot "$ctr" -- /bin/sh -c true 2>/dev/null; then
  echo "the image has a shell" >&2
  exit 1
fi
"${bah[@]}" run --isolation chroot "$ctr" -- /usr/local/bin/mtmd --help | grep -q -- '--shutdown-grace' ||
  { echo "mtmd --help does not run in the image" >&2; exit 1; }
echo "built $tag: static mtmd, user 65532, no shell"
