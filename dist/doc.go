// Package dist holds the files the Debian packages install that are not
// programs: systemd units (systemd/), each package's control fields and
// maintainer scripts (debian/<package>/). tools/programs says which program
// goes into which package; tools/deb.sh builds them (doc/packaging.md). Its
// tests build the packages and check them with Debian's own tools.
package dist
