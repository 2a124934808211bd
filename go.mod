module github.com/nodejoin/nodejoin

go 1.26.8

require github.com/spf13/pflag v1.0.10

require (
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0 // indirect
)
