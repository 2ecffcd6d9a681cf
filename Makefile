# felt — the README's two commands are `make demo` and `make test`.
GO      ?= go
BIN     := bin/felt
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/feltnet/felt/cmd/felt/internal/version.Version=$(VERSION)

.PHONY: all build test test-short lint deps demo bench fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/felt

# deps installs the Debian packages the tests and the demo use (as root), or
# says exactly what is missing.
deps:
	@./scripts/deps.sh

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
