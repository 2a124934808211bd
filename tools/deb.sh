#!/bin/sh
# deb.sh BINDIR OUTDIR builds the Debian packages from the programs in
# BINDIR (as build.sh leaves them) into OUTDIR, with Debian's own dpkg-deb:
# which program goes into which package is tools/programs; each package's
# control fields and maintainer scripts are dist/debian/<package>/; a
# program's unit is dist/systemd/<program>.service; its man page is
# doc/<program>.8.md, turned into roff with go-md2man (pinned in
# tools/go.mod). doc/packaging.md says why and how.
set -eu
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: tools/deb.sh BINDIR OUTDIR" >&2; exit 2; }
bindir=$1 outdir=$2
command -v dpkg-deb >/dev/null || { echo "deb.sh: dpkg-deb(1) is missing (Debian's dpkg)" >&2; exit 1; }

# The version: the tag at HEAD (v1.2.3 -> 1.2.3), else the last tag or
# 0.0.0, then +git<commit date, UTC>.<commit>.
commit=$(git rev-parse --short=7 HEAD)
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
if tag=$(git describe --tags --exact-match HEAD 2>/dev/null); then
	version=${tag#v}
else
	base=$(git describe --tags --abbrev=0 HEAD 2>/dev/null || echo 0.0.0)
	version=${base#v}+git$date.$commit
fi
case "$version" in
[0-9]*) ;;
*) echo "deb.sh: version \"$version\" (from the git tag) does not begin with a digit" >&2; exit 1 ;;
esac
# Reproducible: every file and the changelog carry the commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH
arch=$(dpkg --print-architecture)
maintainer="nodejoin maintainers <nodejoin@lists.nodejoin.org>"

# programs PACKAGE lists the package's programs, from tools/programs.
programs() { awk -v pkg="$1" '$1 !~ /^#/ && $2 == pkg { print $1 }' tools/programs; }
packages=$(awk '$1 !~ /^#/ && NF == 2 { print $2 }' tools/programs | sort -u)

# blocks puts a blank line where go-md2man (blackfriday) needs one and
# CommonMark does not: before a list that follows a paragraph line, and
# between the code spans of a SYNOPSIS, one a line or more.
blocks='
{
	list = /^([-*]|[0-9]+\.) /
	if (prev != "" && ((list && !inlist) || (prev ~ /`$/ && /^`/))) print ""
	print
	prev = $0
	inlist = list || (inlist && /^  /)
}'

# manpage NAME OUT turns doc/NAME.8.md into roff: its "# name(8)" line
# becomes the .TH title, its ## sections top-level .SH ones.
manpage() {
	when=$(TZ=UTC date -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
	upper=$(echo "$1" | tr '[:lower:]' '[:upper:]')
	sed -e "1s/^# $1(8)\$/# $upper 8 \"$when\" \"nodejoin $version\" \"System Administration\"/" \
		-e 's/^##\(#*\) /\1# /' "doc/$1.8.md" | awk "$blocks" >"$tmp/$1.8.md"
	head -1 "$tmp/$1.8.md" | grep -q "^# $upper 8 " || { echo "deb.sh: doc/$1.8.md: the first line is not \"# $1(8)\"" >&2; exit 1; }
	# go-md2man gives every table column tbl's "l", so that a long cell runs
	# past the page: the last column gets "x" (fill the line, wrap).
	go tool -modfile=tools/go.mod go-md2man -in "$tmp/$1.8.md" |
		sed -e '/^allbox;$/{n;s/l $/lx/;n;s/l \.$/lx./}' >"$2"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$outdir" "$outdir/man"
for pkg in $packages; do
	stage=$tmp/$pkg
	[ -f "dist/debian/$pkg/control" ] || { echo "deb.sh: dist/debian/$pkg/control is missing" >&2; exit 1; }
	install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/man/man8" "$stage/usr/share/doc/$pkg"
	for prog in $(programs "$pkg"); do
		[ -x "$bindir/$prog" ] || { echo "deb.sh: $bindir/$prog is missing (run build.sh)" >&2; exit 1; }
		install -m 0755 "$bindir/$prog" "$stage/usr/bin/$prog"
		manpage "$prog" "$outdir/man/$prog.8"
		gzip -9n <"$outdir/man/$prog.8" >"$stage/usr/share/man/man8/$prog.8.gz"
		# Bash completion from the program's own flags (cli's --completion).
		install -d -m 0755 "$stage/usr/share/bash-completion/completions"
		"$bindir/$prog" --completion bash >"$stage/usr/share/bash-completion/completions/$prog"
		chmod 0644 "$stage/usr/share/bash-completion/completions/$prog"
		if [ -f "dist/systemd/$prog.service" ]; then
			install -D -m 0644 "dist/systemd/$prog.service" "$stage/usr/lib/systemd/system/$prog.service"
		fi
	done
	# units: the package's units that are no program's own.
	if [ -f "dist/debian/$pkg/units" ]; then
		for unit in $(grep -v '^#' "dist/debian/$pkg/units"); do
			install -D -m 0644 "dist/systemd/$unit" "$stage/usr/lib/systemd/system/$unit"
		done
	fi
	# carries: another package's programs, for node-add --install.
	if [ -f "dist/debian/$pkg/carries" ]; then
		grep -v '^#' "dist/debian/$pkg/carries" | while read -r other dir; do
			[ -n "$other" ] || continue
			for prog in $(programs "$other"); do
				install -D -m 0755 "$bindir/$prog" "$stage$dir/$prog"
			done
		done
	fi
	install -m 0644 dist/debian/copyright "$stage/usr/share/doc/$pkg/copyright"
	printf '%s\n' "nodejoin ($version) unstable; urgency=medium" "" \
		"  * Built from commit $(git rev-parse HEAD)." "" \
		" -- $maintainer  $(LC_ALL=C TZ=UTC date -R -d "@$SOURCE_DATE_EPOCH")" |
		gzip -9n >"$stage/usr/share/doc/$pkg/changelog.gz"
	if [ -f "dist/debian/$pkg/default" ]; then
		install -D -m 0644 "dist/debian/$pkg/default" "$stage/etc/default/$pkg"
	fi
	if [ -f "dist/debian/$pkg/lintian-overrides" ]; then
		install -D -m 0644 "dist/debian/$pkg/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"
	fi
	for script in postinst prerm postrm preinst; do
		if [ -f "dist/debian/$pkg/$script" ]; then
			install -m 0755 "dist/debian/$pkg/$script" "$stage/DEBIAN/$script"
		fi
	done
	(cd "$stage" && find etc -type f 2>/dev/null | sed 's|^|/|' | sort) >"$stage/DEBIAN/conffiles"
	[ -s "$stage/DEBIAN/conffiles" ] || rm "$stage/DEBIAN/conffiles"
	(cd "$stage" && find usr -type f | sort | xargs md5sum) >"$stage/DEBIAN/md5sums"
	size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
	{
		grep -v '^Description:' "dist/debian/$pkg/control" | sed '/^ /d'
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: $maintainer"
		echo "Installed-Size: $size"
		echo "Homepage: https://nodejoin.org/"
		sed -n '/^Description:/,$p' "dist/debian/$pkg/control"
	} >"$stage/DEBIAN/control"
	chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
	find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$outdir/${pkg}_${version}_$arch.deb" >/dev/null
	echo "deb.sh: built $outdir/${pkg}_${version}_$arch.deb"
done
