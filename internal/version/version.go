// Package version holds the release stamp that build.sh sets with -ldflags.
package version

// stamp is set by build.sh: -X github.com/nodejoin/nodejoin/internal/version.stamp=VERSION.
var stamp = "devel"

// String returns the version the binary was built as.
func String() string { return stamp }
