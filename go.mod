module github.com/nodejoin/nodejoin

go 1.26.8

require github.com/spf13/pflag v1.0.10

require github.com/rogpeppe/go-internal v1.16.0 // indirect
