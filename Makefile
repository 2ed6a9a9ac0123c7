# dpm-netconf: every entry point. `make help` lists them.
SHELL := /bin/bash
GO ?= go
# The version names the last commit that changed what goes into the product
# (binary, units, rule, dracut module, package scripts), not HEAD: a commit
# that touches only tests or docs builds the same bytes, so the cached distro
# images and the u-root image stay valid (a rebuild costs minutes of dracut
# under qemu-user). Go test files and test data are tests wherever they are.
PRODUCT_PATHS := cmd internal dist dracut go.mod go.sum ':(exclude)*_test.go' ':(exclude)*/testdata/*'
VERSION ?= $(shell c=$$(git log -1 --format=%H -- $(PRODUCT_PATHS) 2>/dev/null) && [ -n "$$c" ] && \
	echo "$$(git describe --tags --always $$c)$$(git diff --quiet HEAD -- $(PRODUCT_PATHS) || echo -dirty)" || echo dev)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
# A count of executions, not a duration: Go 1.26's fuzz coordinator can fail a
# duration run with "context deadline exceeded" when the time is up while a
# worker is mid-input (golang/go#75804, fixed in 1.27; it failed CI once).
# 300000 inputs take 6–9 s per target here.
FUZZTIME ?= 300000x
# Downloads and builds that later runs reuse (the kernel, the u-root image).
CACHE ?= $(CURDIR)/.cache
# The kernels the VM tests boot: Debian 12's (6.1) and Debian 13's (6.12),
# each fetched by vmtests/fetch-kernel.sh into $(CACHE)/kernel/<name>.
# KERNEL= picks some of them by name (KERNEL=debian13), or names the folder
# of an unpacked kernel package (KERNEL=/path, as make kernel leaves one).
KERNELS := debian12 debian13
KERNEL ?= $(KERNELS)
kernel_dir = $(if $(findstring /,$(1)),$(1),$(CACHE)/kernel/$(1))
# The one kernel of targets that boot one (uimage, demo, the distro
# images): the first KERNEL names, unless KERNEL_DIR is given.
KERNEL_DIR ?= $(call kernel_dir,$(firstword $(KERNEL)))
KERNEL_NAME = $(if $(findstring /,$(firstword $(KERNEL))),$(notdir $(realpath $(KERNEL_DIR))),$(firstword $(KERNEL)))
# Two Go modules: the product (go.mod here: only what the binary links) and
# the image-building and VM-test tooling (vmtests/go.mod: u-root, mkuimage,
# hugelgupf/vmtest, ...; it uses this tree's product through a replace).
# The product's sources (tracked or new, not deleted), for the image.
GO_SOURCES := $(wildcard $(shell git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null | grep -v '^vmtests/\|_test\.go$$')) go.mod go.sum
TOOLING_MOD := vmtests/go.mod vmtests/go.sum
# The u-root image is named by what goes into it (the product's sources,
# the tooling module, the build script, the kernel), not by file times: a
# fresh clone's files are all newer than the cached image, and a commit to
# tests only builds the same image.
UIMAGE_KEY = $(shell cat $(GO_SOURCES) $(TOOLING_MOD) uroot/build.sh 2>/dev/null | { cat; realpath $(KERNEL_DIR) 2>/dev/null; } | sha256sum | cut -c1-12)
UIMAGE ?= $(CACHE)/uimage/dpm-netconf-s390x-$(KERNEL_NAME)-$(UIMAGE_KEY).cpio
UNIT_PKGS = $$($(GO) list ./...)
# The tooling module's packages that run on the host: all but the VM tests
# themselves (package vmtests boots guests; make vmtest runs it). -v: the
# in-guest tests skip here, and their reasons should be seen.
TOOLING_UNIT_PKGS = $$($(GO) list ./... | grep -v '/vmtests$$')
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Every go test of make test runs through gotestsum (pinned in
# vmtests/go.mod), which keeps the run's events in $(RESULTS)/NAME.json:
# make test ends with the table of what did not run, from those files
# (vmtests/skipreport). $(call testsum,NAME,FORMAT) is the command up to
# go test's own flags.
RESULTS = $(abspath $(CACHE))/test-results
GOTESTSUM = $(CURDIR)/bin/tools/gotestsum
testsum = $(GOTESTSUM) --hide-summary=skipped --jsonfile $(RESULTS)/$(1).json --format $(2) --
RESULT_NAME ?= vmtest

# make install: where things go (DESTDIR for an image's root).
PREFIX ?= /usr
DESTDIR ?=
BINDIR = $(PREFIX)/bin
UNITDIR = $(PREFIX)/lib/systemd/system
INSTALL_ARCH ?= $(shell $(GO) env GOARCH)
SUBST = sed 's|@BINDIR@|$(BINDIR)|g'

.PHONY: vmtest-one roots package-repro bootstats check-deps test-results fresh-check package package-lint package-test vmtest-distro vmtest-dracut vmtest-osa install help build test unit test-s390x fuzz lint bench clean kernel uimage vmtest demo deps

help:
	@echo "make build       static binaries bin/dpm-netconf-{amd64,s390x}"
	@echo "make test        everything CI runs: lint, unit tests (amd64 and s390x under qemu-user), fuzzing, VM tests"
	@echo "make unit        unit tests on this machine (root: also the netlink tests), both modules"
	@echo "make test-s390x  unit tests cross-built for s390x, run under qemu-s390x-static (big-endian)"
	@echo "make fuzz        fuzz the parsers (NIC list, durations, uevents, cio_ignore list) for FUZZTIME each (default 300000x: inputs)"
	@echo "make lint        gofmt, go vet, staticcheck (both modules)"
	@echo "make bench       the benchmarks in docs/performance.md"
	@echo "make kernel      fetch Debian 12's and 13's current s390x kernels (6.1, 6.12) into $(CACHE)/kernel (KERNEL=debian13: one)"
	@echo "make uimage      the s390x u-root image with dpm-netconf as uinit, for the first kernel KERNEL names (or KERNEL=dir of an unpacked kernel)"
	@echo "make vmtest      boot the image under qemu-system-s390x: the VM test scenarios, on each kernel (KERNEL=debian12 or debian13: one)"
	@echo "make package     .deb and .rpm for s390x and amd64 in bin/ (goreleaser's nfpm)"
	@echo "make package-lint  lintian and rpmlint on the packages (errors fail)"
	@echo "make package-repro two clones of HEAD packaged a second apart: the same bytes"
	@echo "make package-test  dpkg and rpm install, upgrade, remove, purge them in a Debian s390x root"
	@echo "make install     binary, compatibility names, manual page, dracut module, systemd units and preset, udev rule (DESTDIR= PREFIX=/usr INSTALL_ARCH=s390x)"
	@echo "make vmtest-distro  boot Debian 12 s390x systems: dracut (both flavours) with make install, initramfs-tools with our .deb; dracut systemd and initramfs-tools again on Debian 13's kernel 6.12"
	@echo "make vmtest-dracut  only the dracut boots"
	@echo "make vmtest-osa  the OSA scenarios under SDL Hyperion (hercules 4.x on PATH or DPM_HERCULES)"
	@echo "make deps        install and set up what the targets need (root): apt packages, qemu-s390x binfmt, dpkg arch s390x"
	@echo "make check-deps  say what is missing for make test, one line each (make test does it first)"
	@echo "make fresh-check take away what make deps added, empty the cache, clone main, run .ci/run (root; CI cold)"
	@echo "make demo        install what is missing, fetch the kernel, build the image, boot a guest with 3 NICs"

build: bin/dpm-netconf-amd64 bin/dpm-netconf-s390x

bin/dpm-netconf-%: FORCE
	GOARCH=$* $(BUILD) -o $@ ./cmd/dpm-netconf
	@ls -l $@ | awk '{printf "%s: %.2f MiB\n", $$NF, $$5/1048576}'

FORCE:

install: bin/dpm-netconf-$(INSTALL_ARCH)
	install -D -m 0755 $< $(DESTDIR)$(BINDIR)/dpm-netconf
	ln -sf dpm-netconf $(DESTDIR)$(BINDIR)/autoconfigure_networking.sh
	ln -sf dpm-netconf $(DESTDIR)$(BINDIR)/setmac.sh
	install -d $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95dpm-netconf
	$(SUBST) dracut/95dpm-netconf/module-setup.sh > $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95dpm-netconf/module-setup.sh
	install -m 0755 dracut/95dpm-netconf/dpm-netconf-hook.sh $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95dpm-netconf/
	chmod 0755 $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95dpm-netconf/module-setup.sh
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/systemd/system-preset $(DESTDIR)$(PREFIX)/lib/udev/rules.d
	for u in dpm-netconf.service dpm-netconf@.service; do $(SUBST) dist/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	# The original tools' unit name: systemctl enable/status take it.
	ln -sf dpm-netconf.service $(DESTDIR)$(UNITDIR)/autoconfigure_networking.service
	# Enabled by preset (systemctl preset dpm-netconf.service, or a
	# package's postinst), not by a link here: an admin can disable it.
	install -m 0644 dist/90-dpm-netconf.preset $(DESTDIR)$(PREFIX)/lib/systemd/system-preset/
	$(SUBST) dist/80-dpm-netconf.rules > $(DESTDIR)$(PREFIX)/lib/udev/rules.d/80-dpm-netconf.rules
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/udev/rules.d/80-dpm-netconf.rules
	# The manual page (dist/man), gzipped without a timestamp; the original
	# tools' names point to it.
	install -d $(DESTDIR)$(PREFIX)/share/man/man8
	gzip -9n < dist/man/dpm-netconf.8 > $(DESTDIR)$(PREFIX)/share/man/man8/dpm-netconf.8.gz
	chmod 0644 $(DESTDIR)$(PREFIX)/share/man/man8/dpm-netconf.8.gz
	ln -sf dpm-netconf.8.gz $(DESTDIR)$(PREFIX)/share/man/man8/autoconfigure_networking.sh.8.gz
	ln -sf dpm-netconf.8.gz $(DESTDIR)$(PREFIX)/share/man/man8/setmac.sh.8.gz
	install -d $(DESTDIR)$(PREFIX)/share/initramfs-tools/hooks $(DESTDIR)$(PREFIX)/share/initramfs-tools/scripts/init-premount
	$(SUBST) dist/initramfs-tools/hooks/dpm-netconf > $(DESTDIR)$(PREFIX)/share/initramfs-tools/hooks/dpm-netconf
	install -m 0755 dist/initramfs-tools/scripts/init-premount/dpm-netconf $(DESTDIR)$(PREFIX)/share/initramfs-tools/scripts/init-premount/
	chmod 0755 $(DESTDIR)$(PREFIX)/share/initramfs-tools/hooks/dpm-netconf

# Packages: dpm-netconf_<version>_<arch>.deb and dpm-netconf-<version>-1.<arch>.rpm
# in bin/, for s390x and amd64, from make install's tree (goreleaser's nfpm,
# pinned in dist/package/go.mod). The version comes from VERSION (git
# describe); a build outside git says so and is 0.0.0~nogit.
PKG_ARCHES ?= s390x amd64
PKG_VERSION = $(shell v='$(VERSION)'; case "$$v" in \
	(dev) echo 0.0.0~nogit ;; \
	(v[0-9]*) echo "$${v#v}" | sed 's/-\([0-9]*\)-g/+\1.g/; s/-dirty$$/~dirty/' ;; \
	(*) echo "0.0.0~git$$(git rev-list --count HEAD 2>/dev/null).$$v" | sed 's/-dirty$$/~dirty/' ;; esac)
NFPM = cd dist/package && $(GO) tool nfpm
# Reproducible packages: every time in them (files, changelog, the rpm's
# build time) is the last product commit's (SOURCE_DATE_EPOCH, which nfpm
# reads), binaries are built -trimpath with an empty build id, and the
# files' modes come from make install: two builds of one commit, anywhere,
# at any time, give the same bytes (make package-repro checks it).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct -- $(PRODUCT_PATHS) 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

package:
	@[ '$(VERSION)' != dev ] || echo "package: not in a git checkout: version $(PKG_VERSION)"
	@rm -rf bin/pkg bin/*.deb bin/*.rpm && mkdir -p bin/pkg/docs
	@printf -- '- semver: %s-1\n  date: %s\n  packager: DPM Guest Image Tools <dpm-guest-image-tools@users.noreply.github.com>\n  deb:\n    urgency: medium\n    distributions: [unstable]\n  changes:\n    - note: Built from %s.\n' \
		'$(PKG_VERSION)' "$$(date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)" '$(VERSION)' > bin/pkg/docs/changelog.yml
	@cp dist/package/copyright dist/package/lintian-overrides README.md LICENSE bin/pkg/docs/ && mkdir -p bin/pkg/docs/docs && cp docs/*.md bin/pkg/docs/docs/
	@for a in $(PKG_ARCHES); do \
		$(MAKE) -s install DESTDIR=$(CURDIR)/bin/pkg/$$a PREFIX=/usr INSTALL_ARCH=$$a VERSION=$(VERSION) || exit 1; \
		rm -rf bin/pkg/man-$$a && mv bin/pkg/$$a/usr/share/man/man8 bin/pkg/man-$$a && rmdir bin/pkg/$$a/usr/share/man || exit 1; \
		find bin/pkg -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} + || exit 1; \
		sed -e "s|\$${ARCH}|$$a|g" -e "s|\$${MAN}|$(CURDIR)/bin/pkg/man-$$a|g" -e 's|$${PKG_VERSION}|$(PKG_VERSION)|g' -e "s|\$${STAGE}|$(CURDIR)/bin/pkg/$$a|g" \
			-e 's|$${DOCS}|$(CURDIR)/bin/pkg/docs|g' -e 's|$${TOP}|$(CURDIR)|g' dist/package/nfpm.yaml > bin/pkg/nfpm-$$a.yaml; \
		for p in deb rpm; do \
			(cd dist/package && $(GO) tool nfpm package --config $(CURDIR)/bin/pkg/nfpm-$$a.yaml --packager $$p --target $(CURDIR)/bin/) >/dev/null || exit 1; \
		done; \
	done
	@ls -l bin/*.deb bin/*.rpm | awk '{printf "%s: %.2f MiB\n", $$NF, $$5/1048576}'

# Reproducible packages: the committed HEAD cloned twice, packaged in each
# clone a second apart, the .deb and .rpm files compared byte for byte.
package-repro:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	for c in a b; do git clone -q "$(CURDIR)" "$$dir/$$c" && $(MAKE) -s -C "$$dir/$$c" package >/dev/null && \
		(cd "$$dir/$$c/bin" && sha256sum *.deb *.rpm) > "$$dir/$$c.sha256" || exit 1; sleep 1; done && \
	if cmp -s "$$dir/a.sha256" "$$dir/b.sha256"; then echo "package-repro: two builds in two clones, byte for byte the same:"; cat "$$dir/a.sha256"; \
	else echo "package-repro: two builds of one commit differ:"; diff "$$dir/a.sha256" "$$dir/b.sha256"; exit 1; fi

# lintian and rpmlint (Debian's packages) on every package: errors fail;
# docs/packaging.md says which warnings remain and why.
package-lint: deps package
	@for d in bin/*.deb; do echo "lintian $$d"; lintian --tag-display-limit 0 --fail-on error $$d 2>&1 | grep -v 'running with root privileges' ; [ $${PIPESTATUS[0]} -eq 0 ] || exit 1; done
	@for p in bin/*.deb bin/*.rpm; do case $$p in (*.deb) l=$$(dpkg-deb -c $$p);; (*) l=$$(rpm -qlp $$p 2>/dev/null);; esac; \
		for m in dpm-netconf autoconfigure_networking.sh setmac.sh; do echo "$$l" | grep -q "/usr/share/man/man8/$$m.8.gz" || { echo "$$p: no manual page for $$m"; exit 1; }; done; done
	@for r in bin/*.rpm; do echo "rpmlint $$r"; rpmlint -c dist/package/rpmlint.toml -r dist/package/dpm-netconf.rpmlintrc $$r | grep -v '^=\|^rpmlint:\|^configuration\|^    /\|^checks:\|^$$'; [ $${PIPESTATUS[0]} -eq 0 ] || exit 1; done

# The maintainer scripts as dpkg and rpm run them (dist/package/lifecycle_test.go):
# install, upgrade, remove, purge of the s390x packages in the initramfs-tools
# distro root (cached; its programs run through qemu-user), with the
# original DPM tools' files placed by hand.
PACKAGE_ROOT = vmtests/distro/build-root.sh $(CACHE) vmtests/distro/packages-initramfs-tools.txt
# The two Debian s390x roots (dracut's, initramfs-tools'), built side by
# side when not cached: each is mostly one dpkg at a time under qemu-user
# (about 5.5 minutes each, measured on a new machine).
roots: deps
	@set -o pipefail; vmtests/distro/build-root.sh $(CACHE) vmtests/distro/packages.txt >/dev/null & dracut=$$!; \
	vmtests/distro/build-root.sh $(CACHE) vmtests/distro/packages-initramfs-tools.txt >/dev/null; itools=$$?; \
	wait $$dracut; dracut=$$?; [ $$dracut = 0 ] && [ $$itools = 0 ] || { echo "roots: a root build failed (dracut's: exit $$dracut, initramfs-tools': exit $$itools)" >&2; exit 1; }

package-test: deps roots package $(GOTESTSUM) | $(RESULTS)
	set -o pipefail; root=$$($(PACKAGE_ROOT) | tail -1) && cd dist/package && DPM_PACKAGE_ROOT=$$root DPM_PACKAGE_DIR=$(CURDIR)/bin \
		$(call testsum,package-test,standard-verbose) -count=1 .

# Each part in turn, timed: make test ends with the minutes of each and the
# table of tests that did not run.
TEST_PARTS = lint unit test-s390x fuzz package-lint package-repro package-test vmtest vmtest-distro
test: check-deps test-results
	@for part in $(TEST_PARTS); do start=$$(date +%s); \
		$(MAKE) --no-print-directory $$part || { echo "make test: $$part failed after $$(( $$(date +%s) - start )) s"; exit 1; }; \
		echo "$$part $$(( $$(date +%s) - start ))" >> $(RESULTS)/times; done
	@echo "make test: time per part (2 cores):"; awk '{ printf "  %-13s %4d s  %5.1f min\n", $$1, $$2, $$2 / 60; t += $$2 } END { printf "  %-13s %4d s  %5.1f min\n", "all", t, t / 60 }' $(RESULTS)/times
	@cd vmtests && $(GO) run ./skipreport $(RESULTS)/*.json

test-results:
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)

$(GOTESTSUM): vmtests/go.mod vmtests/go.sum
	cd vmtests && $(GO) build -o $@ gotest.tools/gotestsum

$(RESULTS):
	@mkdir -p $@

# The chaos tests once more without -race: the race detector shuffles the
# scheduler on purpose, so only there does a seed replay exactly.
unit: $(GOTESTSUM) | $(RESULTS)
	$(call testsum,unit,standard-quiet) -race -count=1 $(UNIT_PKGS)
	$(call testsum,unit-norace,standard-quiet) -count=1 -run '^TestChaos' ./internal/apply/
	cd vmtests && $(call testsum,unit-tooling,standard-quiet) -race -count=1 $(TOOLING_UNIT_PKGS)

# Under qemu-user every instruction is emulated: 200 chaos seeds (of make
# unit's 1000) keep the big-endian run to minutes.
test-s390x: $(GOTESTSUM) | $(RESULTS)
	export DPM_CHAOS_SEEDS=200 CGO_ENABLED=0 GOARCH=s390x && $(call testsum,s390x,standard-quiet) -count=1 -exec qemu-s390x-static $(UNIT_PKGS)

# The install step: every host-wide thing the targets need (apt packages,
# binfmt_misc and the qemu-s390x entry, dpkg's s390x architecture).
# check-deps only says what is missing, one line each.
deps:
	@vmtests/install-deps.sh

check-deps:
	@vmtests/install-deps.sh --check

# CI as a new machine meets it: takes away what `make deps` added, empties
# the cache, clones main and runs .ci/run (vmtests/fresh-check.sh).
fresh-check:
	vmtests/fresh-check.sh

demo: KERNEL = debian12
demo: deps kernel uimage
	cd vmtests && $(GO) run ./demo -kernel $(abspath $(KERNEL_DIR)) -image $(abspath $(UIMAGE)) -console $(abspath $(CACHE))/demo-console.log

# Each kernel KERNEL names (a folder is taken as it is).
kernel: deps
	@for k in $(KERNEL); do case "$$k" in */*) ;; *) vmtests/fetch-kernel.sh $(CACHE) $$k >/dev/null || exit 1 ;; esac; done

uimage: $(UIMAGE)

# The image of one kernel; the others' stay (each is named by its kernel).
$(UIMAGE): | $(KERNEL_DIR)/release
	rm -f $(CACHE)/uimage/dpm-netconf-s390x-$(KERNEL_NAME)-*.cpio
	VERSION=$(VERSION) uroot/build.sh $(KERNEL_DIR) $@

$(CACHE)/kernel/%/release:
	@vmtests/fetch-kernel.sh $(CACHE) $* >/dev/null

# The distro boots: build (or reuse) the Debian 12 roots and their disks
# under $(CACHE)/distro, then boot them. vmtest-distro runs every one
# (dracut's two flavours, initramfs-tools with our .deb) with Debian 12's
# kernel, and the dracut systemd and initramfs-tools boots again with
# Debian 13's 6.12 (each kernel's images built side by side; 6.12's dracut
# image has the systemd flavour only);
# vmtest-dracut only dracut's, on Debian 12's kernel.
DISTRO_IMAGE = vmtests/distro/build-image.sh $(CACHE)
vmtest-distro: deps roots build
	@for k in debian12 debian13; do vmtests/fetch-kernel.sh $(CACHE) $$k >/dev/null || exit 1; done
	set -o pipefail; d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	for k in debian12 debian13; do \
		f=dracut; [ $$k = debian12 ] || f=dracut-systemd; \
		{ $(DISTRO_IMAGE) $(CACHE)/kernel/$$k $$f | tail -1 > $$d/dracut-$$k && \
		  $(DISTRO_IMAGE) $(CACHE)/kernel/$$k initramfs-tools | tail -1 > $$d/itools-$$k; } 2> >(sed -u "s/^/$$k: /" >&2) & \
	done; failed=0; for j in $$(jobs -p); do wait $$j || failed=1; done; \
	[ $$failed = 0 ] || { echo "vmtest-distro: an image build failed (its lines above)" >&2; exit 1; }; \
	$(MAKE) vmtest KERNEL=debian12 DPM_DISTRO_IMAGE=$$(cat $$d/dracut-debian12) DPM_DISTRO_ITOOLS_IMAGE=$$(cat $$d/itools-debian12) \
		DPM_DISTRO_IMAGE_612=$$(cat $$d/dracut-debian13) DPM_DISTRO_ITOOLS_IMAGE_612=$$(cat $$d/itools-debian13) VMTEST_ARGS='-run TestDistro' RESULT_NAME=vmtest-distro

vmtest-dracut: deps roots build
	@vmtests/fetch-kernel.sh $(CACHE) debian12 >/dev/null
	set -o pipefail; dracut=$$($(DISTRO_IMAGE) $(CACHE)/kernel/debian12 dracut | tail -1) && \
		$(MAKE) vmtest KERNEL=debian12 DPM_DISTRO_IMAGE=$$dracut VMTEST_ARGS='-run TestDistro -skip "TestDistroInitramfsTools|Kernel612"' RESULT_NAME=vmtest-dracut

# A measurement: N boots of the dracut (systemd) distro image, one after
# the other, each one's time to the report or its stall and QEMU's
# translator figures in $(CACHE)/consoles/debian12/bootstats.tsv. The boots are bare
# (no norandmaps): DPM_QEMU and DPM_GUEST_ARGS set what is measured
# (docs/testing.md).
N ?= 20
bootstats: deps build
	@vmtests/fetch-kernel.sh $(CACHE) debian12 >/dev/null
	set -o pipefail; dracut=$$($(DISTRO_IMAGE) $(CACHE)/kernel/debian12 dracut | tail -1) && \
		$(MAKE) vmtest KERNEL=debian12 DPM_DISTRO_IMAGE=$$dracut DPM_BOOTSTATS=$(N) VMTEST_ARGS='-run TestDistroBootStats -timeout 600m' RESULT_NAME=bootstats-$$$$

# The emulated-OSA scenarios only (they are part of vmtest too, and skip
# there without Hyperion).
vmtest-osa:
	$(MAKE) vmtest VMTEST_ARGS='-run TestOSA' RESULT_NAME=vmtest-osa VMTEST_PARALLEL=no

# vmtest keeps QEMU's and vmtest's temporary files in a folder of its own
# under $(CACHE)/tmp, which it removes (runs side by side do not share it);
# the log is $(CACHE)/$(RESULT_NAME).log.
# With more than one kernel, the scenarios run on each, as
# RESULT_NAME-<kernel>: side by side (each kernel's output lines begin with
# its name; every kernel runs to its end even when another fails), or one
# after the other with VMTEST_PARALLEL=no (vmtest-osa: the Hercules guests
# share their tap interfaces' names).
VMTEST_PARALLEL ?= yes
vmtest: deps kernel $(GOTESTSUM) | $(RESULTS)
	@set -- $(KERNEL); if [ $$# = 1 ]; then $(MAKE) --no-print-directory vmtest-one KERNEL=$$1; exit; fi; \
	d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT; \
	for k in "$$@"; do \
		if [ $(VMTEST_PARALLEL) = yes ]; then \
			{ $(MAKE) --no-print-directory vmtest-one KERNEL=$$k RESULT_NAME=$(RESULT_NAME)-$$k 2>&1 || echo "$$k" >> $$d/failed; } | sed -u "s/^/$$k: /" & \
		else $(MAKE) --no-print-directory vmtest-one KERNEL=$$k RESULT_NAME=$(RESULT_NAME)-$$k || echo "$$k" >> $$d/failed; fi; \
	done; wait; \
	[ ! -s $$d/failed ] || { echo "vmtest: failed on $$(tr '\n' ' ' < $$d/failed)"; exit 1; }

vmtest-one: uimage
	@echo "vmtest: kernel $(KERNEL_NAME) ($$(cat $(KERNEL_DIR)/release)); test log in $(CACHE)/$(RESULT_NAME).log, Hercules and distro guest consoles in $(CACHE)/consoles/$(KERNEL_NAME)"
	mkdir -p $(CACHE)/tmp && tmp=$$(mktemp -d $(abspath $(CACHE))/tmp/$(RESULT_NAME)-XXXXXX) && cd vmtests && \
		TMPDIR=$$tmp DPM_KERNEL_DIR=$(abspath $(KERNEL_DIR)) DPM_UIMAGE=$(abspath $(UIMAGE)) \
		DPM_CONSOLE_DIR=$(abspath $(CACHE))/consoles/$(KERNEL_NAME) DPM_DISTRO_IMAGE=$(DPM_DISTRO_IMAGE) DPM_DISTRO_ITOOLS_IMAGE=$(DPM_DISTRO_ITOOLS_IMAGE) DPM_DISTRO_IMAGE_612=$(DPM_DISTRO_IMAGE_612) DPM_DISTRO_ITOOLS_IMAGE_612=$(DPM_DISTRO_ITOOLS_IMAGE_612) $(call testsum,$(RESULT_NAME),standard-verbose) -count=1 -timeout 70m $(or $(VMTEST_ARGS),-skip TestDistro) . 2>&1 | tee $(abspath $(CACHE))/$(RESULT_NAME).log | grep -v 'devices.go:[0-9]*: ' ; \
		st=$${PIPESTATUS[0]}; rm -rf $$tmp; exit $$st

# Every parser of outside input: the NIC list, durations, kernel events,
# the cio_ignore list, bus ids.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/cmdline/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDuration$$' -fuzztime $(FUZZTIME) ./internal/cmdline/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/uevent/
	$(GO) test -run '^$$' -fuzz '^FuzzParseIgnoreList$$' -fuzztime $(FUZZTIME) ./internal/ccw/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/busid/

lint:
	@out=$$(gofmt -l $(wildcard $(shell git ls-files --cached --others --exclude-standard '*.go'))); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd vmtests && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd dist/package && $(GO) vet . && $(GO) run $(STATICCHECK) .
	@# The units' sandboxing: systemd-analyze's exposure score, at most 3.0.
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && for u in dpm-netconf.service dpm-netconf@.service; do \
		$(SUBST) dist/$$u > "$$d/$$u" && score=$$(cd "$$d" && systemd-analyze security --offline=true --no-pager "$$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p') && \
		echo "lint: $$u exposure $$score (at most 3.0)" && awk -v s="$$score" 'BEGIN { exit !(s != "" && s <= 3.0) }' || { echo "lint: $$u: exposure $$score, above 3.0 (systemd-analyze security --offline=true)"; exit 1; }; done

bench:
	$(GO) test -run '^$$' -bench Apply -benchtime 5x ./internal/apply/
	$(GO) test -run '^$$' -bench WakeOnEvent -benchtime 200x ./internal/apply/
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./internal/ccw/

clean:
	rm -rf bin
