# Every target is a thin wrapper: build.sh builds, go test tests.
GO ?= go

.PHONY: all build deb test lint unit qa fuzz demo bench deps clean lab lab-shell lab-down

all: build

build:
	./build.sh

# The Debian packages nodejoin-node and nodejoin-master, and the roff man
# pages they install, into build/ (doc/packaging.md).
deb:
	./build.sh --deb

# The README's test command: lint, unit and command tests, the QA harness on
# real sshd (as root; it skips elsewhere), and a short run of every fuzz target.
test: deps lint unit fuzz

deps:
	./tools/install-deps.sh

lint:
	./tools/no-binaries.sh
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...
	$(GO) tool -modfile=tools/go.mod golangci-lint run ./...

# tools/leftovers.sh gives the run a private TMPDIR and fails if anything is
# left there, in the host's nodejoin paths or under nodejoin's names in /tmp.
unit:
	./tools/leftovers.sh $(GO) test -count=1 -timeout 25m ./...

qa:
	$(GO) test -count=1 -timeout 25m -v ./qa/...

fuzz:
	./tools/leftovers.sh ./tools/fuzz.sh 5s

# The README's "run the main job": a master and three nodes on namespace
# hosts, joined with node-add, then torn down (root; qa/demo).
demo: deps build
	$(GO) run ./qa/demo

# node-add against the pre-2.7 Ganeti way for 1, 10 and 50 nodes, and the
# node-side programs' time per run; writes doc/benchmarks.md (root; qa/bench).
# Then pull mode's registrations (join-service, embedded store and etcd):
# its own section of that file (qa/bench -pull); then auto-registration,
# advert to registered (qa/bench -register).
bench: deps build
	$(GO) run ./qa/bench
	$(GO) run ./qa/bench -pull
	$(GO) run ./qa/bench -register

# A kept lab to try the programs by hand: master and $(NODES) nodes on
# namespace hosts, up until make lab-down (root; qa/lab). make lab-shell
# HOST=node1 opens a shell in a host; go run ./qa/lab run HOST -- CMD runs
# one command.
NODES ?= 2
HOST ?= master
lab: deps
	$(GO) run ./qa/lab up --nodes $(NODES) --bare $(or $(BARE),0)

lab-shell:
	$(GO) run ./qa/lab shell $(HOST)

lab-down:
	$(GO) run ./qa/lab down

clean:
	rm -rf bin build
