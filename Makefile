# Every target is a thin wrapper: build.sh builds, go test tests.
GO ?= go

.PHONY: all build test lint unit qa fuzz demo bench deps clean

all: build

build:
	./build.sh

# The README's test command: lint, unit and command tests, the QA harness on
# real sshd (as root; it skips elsewhere), and a short run of every fuzz target.
test: deps lint unit fuzz

deps:
	./tools/install-deps.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...

unit:
	$(GO) test -count=1 ./...

qa:
	$(GO) test -count=1 -v ./qa/...

fuzz:
	./tools/fuzz.sh 5s

clean:
	rm -rf bin
