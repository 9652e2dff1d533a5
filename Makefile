# Front end for the meson build (QEMU-independent parts + unit tests), the
# QEMU build (Debian's QEMU 10.2 source + our overlay, in a trixie root),
# the test VM and the demo. See README.md.

BUILD    ?= build
CACHE    ?= $(HOME)/.cache/vfio-display-dmabuf
QEMU_SRC ?=
export CACHE QEMU_SRC

MESON_UNIT = $(BUILD)/unit
MESON_ASAN = $(BUILD)/asan
# libFuzzer harnesses (clang; tests/fuzz/run.sh, docs/fuzzing.md)
FUZZ_DIR   = $(BUILD)/fuzz
FUZZ_SECONDS ?= 60

.PHONY: all setup unit qemu check check-unit check-asan check-qemu check-rig \
        check-qtest check-gui check-upstream check-fuzz fuzz demo demo-live \
        bench soak check-qtest-asan deb check-deb check-libvirt check-kms clean

all: unit qemu

# the host packages (scripts/host-packages.txt): installed when run as root,
# else the command to run is printed; every target below needs them
setup:
	@scripts/setup-host.sh

$(MESON_UNIT)/build.ninja: | setup
	meson setup $(MESON_UNIT) >/dev/null

$(MESON_ASAN)/build.ninja: | setup
	meson setup $(MESON_ASAN) -Db_sanitize=address,undefined \
	    -Db_lundef=false >/dev/null

unit: $(MESON_UNIT)/build.ninja
	ninja -C $(MESON_UNIT)

# Builds $(BUILD)/qemu/qemu-system-x86_64 (cached root and ccache in $(CACHE))
qemu: setup
	scripts/build-qemu.sh $(BUILD)/qemu

check: check-unit check-asan check-fuzz check-qemu check-rig check-qtest \
       check-gui check-kms check-deb check-libvirt
	@echo "== make check: all test suites passed"

check-unit: unit
	tests/check-layering.sh
	meson test -C $(MESON_UNIT) --print-errorlogs

# the same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
check-asan: $(MESON_ASAN)/build.ninja
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    meson test -C $(MESON_ASAN) --print-errorlogs

# libFuzzer + ASan/UBSan: each harness for FUZZ_SECONDS (one core); prints
# "fuzz: <harness>: N execs, C crashes"; a crash input stays in $(FUZZ_DIR)
fuzz: setup
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

# the same, short (about 30 s per harness)
check-fuzz: setup
	tests/fuzz/run.sh $(FUZZ_DIR) 30

# the overlay QEMU: version, display property, our trace events
check-qemu: qemu
	tests/qemu-smoke.sh $(BUILD)/qemu/qemu-system-x86_64

# the TCG test VM: engine against pristine mbochs and vgpusim, then the EGL
# layer on Mesa's software renderer with real dma-bufs
check-rig: setup
	tests/rig/check-rig.sh $(BUILD)/rig
	tests/egl/check-egl.sh $(BUILD)/egl

# real GUI clients (X11, Wayland, SPICE, VNC) against the device's frame,
# pixel-exact, in the rig VM (docs/display-matrix.md)
check-gui: setup
	@mkdir -p $(BUILD)
	@python3 tests/gui/test_gui_images.py > $(BUILD)/test-gui-images.log 2>&1 || \
	    { tail -n 30 $(BUILD)/test-gui-images.log; exit 1; }
	@tail -n 1 $(BUILD)/test-gui-images.log
	tests/gui/check-gui.sh $(BUILD)

check-qtest: setup
	tests/qtest/check-qtest.sh $(BUILD)

# the main job: QEMU with display=on on the simulated vGPU in the test VM;
# screenshots (PNG) and a stats report in $(BUILD)/demo
demo: setup
	scripts/demo.sh $(BUILD)/demo

# the demo kept running: QEMU's VNC display forwarded to 127.0.0.1:5905
# (DEMO_LIVE_PORT); Ctrl-C stops it
demo-live: setup
	scripts/demo-live.sh $(BUILD)/demo-live

# reference run of unmodified Debian QEMU 10.2 (docs/upstream-comparison.md)
check-upstream: setup
	tests/qtest/check-upstream.sh $(BUILD)

# the QEMU display tests, the short soak and hot-unplug with our QEMU
# built with AddressSanitizer + UndefinedBehaviorSanitizer
check-qtest-asan: setup
	SANITIZE=1 QTEST_TIMEOUT=1500 tests/qtest/check-qtest.sh $(BUILD)

# the long soak: 10 000 flips at 120 Hz with faults injected at random, a
# VNC client and screendumps throughout (tests/qtest/soak.py); the short
# one (1000 flips) runs in check-qtest
soak: setup
	QTEST_ONLY=qtest-soak SOAK_FLIPS=10000 QTEST_TIMEOUT=1500 \
	    tests/qtest/check-qtest.sh $(BUILD)

# frames delivered end to end, latency and cost, ours vs upstream QEMU 10.2
# on the same device in one VM boot (docs/benchmarks.md); not in `make check`
bench: setup
	tests/bench/run-bench.sh $(BUILD)

# the overlay QEMU as a Debian trixie package (docs/packaging.md):
# $(BUILD)/deb/qemu-system-x86-vfio-dmabuf_<version>_amd64.deb, lintian
# run on it ($(BUILD)/deb/lintian.txt)
deb: qemu
	@mkdir -p $(BUILD)/deb
	scripts/build-deb.sh $(BUILD)/deb $(BUILD)/qemu > $(BUILD)/deb/path
	@echo "package: $$(cat $(BUILD)/deb/path)"

# the package installed, run, and purged in a clean trixie root
# -display kms on vkms in the rig VM: vkms itself (PRIME import of a
# vgpusim dma-buf, writeback, restore: tests/rig/check-vkms.sh), then QEMU
# showing vgpusim on it, pixel-exact through the writeback connector
# (tests/kms/check-kms.sh, docs/display-kms.md)
check-kms: setup
	tests/rig/check-vkms.sh $(BUILD)/rig
	tests/kms/check-kms.sh $(BUILD)

check-deb: deb
	tests/deb/check-deb.sh "$$(cat $(BUILD)/deb/path)"

# libvirt from Debian trixie drives the package's QEMU in the test VM:
# VNC, SPICE, SPICE gl=on + egl-headless, ramfb (docs/libvirt.md)
check-libvirt: deb
	tests/libvirt/check-libvirt.sh "$$(cat $(BUILD)/deb/path)" $(BUILD)/libvirt

clean:
	rm -rf $(BUILD)
