#!/bin/sh
# build.sh builds every program into bin/ (or $BIN) with the version stamped
# in, using only Go and a POSIX shell. The Makefile calls it; so can you.
# build.sh --deb also builds the Debian packages (and the roff man pages
# they install) into build/ (or $OUT) with tools/deb.sh: see doc/packaging.md.
set -eu
cd "$(dirname "$0")"
deb=no
for arg; do
	case "$arg" in
	--deb) deb=yes ;;
	*) echo "usage: build.sh [--deb]" >&2; exit 2 ;;
	esac
done
MOD=$(go list -m)
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
LDFLAGS="-X $MOD/internal/version.stamp=$VERSION"
# Packaged programs are stripped, as Debian ships them (panics keep their
# stack traces: the Go runtime's own tables stay).
if [ "$deb" = yes ]; then
	LDFLAGS="-s -w $LDFLAGS"
fi
BIN=${BIN:-bin}
mkdir -p "$BIN"
CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/" ./cmd/...
# -X naming a missing symbol is silently ignored: check that the stamp took.
for prog in "$BIN"/*; do
	[ -f "$prog" ] && [ -x "$prog" ] || continue
	got=$("$prog" --version)
	case "$got" in
	*" $VERSION") ;;
	*) echo "build.sh: $prog --version printed \"$got\", want version $VERSION" >&2; exit 1 ;;
	esac
done
echo "build.sh: built $(cd "$BIN" && ls | tr '\n' ' ')(version $VERSION)"
if [ "$deb" = yes ]; then
	./tools/deb.sh "$BIN" "${OUT:-build}"
fi
