#!/bin/sh
# fuzz.sh runs every Fuzz target of the module for a short time each
# (default 5s): go test -fuzz takes one target of one package per run.
#
# Go 1.26's fuzzing coordinator can end a time-bounded run with a bare
# "context deadline exceeded" and no failing input when a worker misses the
# deadline under load (go.dev/issue/75804, fixed in Go 1.27). Such a run
# found nothing; it is run again with a count of executions instead, which
# has no deadline to race, and only a failure of that run counts. A run that
# wrote a failing input always fails.
set -eu
t=${1:-5s}
out=$(mktemp "${TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -f "$out"' EXIT
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz: $pkg $f ($t)"
		if go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg" >"$out" 2>&1; then
			cat "$out"
			continue
		fi
		cat "$out"
		if grep -q 'Failing input written' "$out" || ! grep -q '^    context deadline exceeded$' "$out"; then
			exit 1
		fi
		echo "fuzz: $f: the coordinator's deadline race (go.dev/issue/75804), no failing input; again by count"
		go test -run='^$' -fuzz="^$f\$" -fuzztime=20000x "$pkg"
	done
done
