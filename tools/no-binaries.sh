#!/bin/sh
# Fails if an executable built by `go build ./cmd/...` at the top of the tree
# (or anywhere) was committed: tracked files must not be ELF objects.
set -eu
found=$(git ls-files -z | xargs -0 -r sh -c 'for f; do [ -f "$f" ] && [ "$(head -c4 "$f" | od -An -c | tr -d " ")" = "177ELF" ] && echo "$f"; done; true' sh)
if [ -n "$found" ]; then
	echo "tracked build output (remove it with git rm --cached):" >&2
	echo "$found" >&2
	exit 1
fi
