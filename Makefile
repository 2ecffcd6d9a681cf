# felt — the README's two commands are `make demo` and `make test`.
GO      ?= go
BIN     := bin/felt
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/feltnet/felt/cmd/felt/internal/version.Version=$(VERSION)

.PHONY: all build install uninstall test test-short lint fmtcheck deps demo bench fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/felt

# install puts felt in $(PREFIX)/bin with a flanneld link (felt run under
# that name is the agent, with flanneld's flags) and the Type=notify unit;
# then: systemctl daemon-reload && systemctl enable --now flanneld.
PREFIX     ?= /usr/local
UNITDIR    ?= /etc/systemd/system
DESTDIR    ?=
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/felt
	ln -sf felt $(DESTDIR)$(PREFIX)/bin/flanneld
	install -D -m 0644 dist/systemd/flanneld.service $(DESTDIR)$(UNITDIR)/flanneld.service
	sed -i 's#/usr/local/bin/flanneld#$(PREFIX)/bin/flanneld#' $(DESTDIR)$(UNITDIR)/flanneld.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/flanneld $(DESTDIR)$(PREFIX)/bin/felt $(DESTDIR)$(UNITDIR)/flanneld.service

# deps installs the Debian packages the tests and the demo use (as root), or
# says exactly what is missing.
deps:
	@./scripts/deps.sh

# test is what CI runs (.ci/run): formatting and vet first, then every test.
test: deps fmtcheck
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint: fmtcheck
	$(GO) vet ./...

# fmtcheck fails if gofmt would change any Go file, tracked or new (all
# files under . when this is not a git checkout).
fmtcheck:
	@files=$$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'); \
	bad=$$(gofmt -l $$files); \
	if [ -n "$$bad" ]; then echo "gofmt would change (run gofmt -w on them):"; echo "$$bad"; exit 1; fi

# demo builds flannel's container lab on this machine (see README); as root, or
# rootless in a user namespace. Extra flags: make demo DEMO_FLAGS='--hosts 4 --keep'.
demo: build deps
	./$(BIN) demo $(DEMO_FLAGS)

# bench measures felt against kernel VXLAN and bare veth in one run (needs root).
bench: build deps
	./$(BIN) bench $(BENCH_FLAGS)

# fuzz runs every fuzz target for FUZZTIME each (not part of `make test`).
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
