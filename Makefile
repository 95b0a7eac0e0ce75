# libdisrnn build. Conventional variables: PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR;
# user CC, CFLAGS, CPPFLAGS, LDFLAGS are appended to, never overwritten.
#   make            shared and static libraries in lib/
#   make check      unit tests (cmocka) + header, export and install checks
#   make check SANITIZE="-fsanitize=address,undefined"
#   make docs       Doxygen reference (warnings are errors)
#   make demo       the main job: the paper's synthetic experiment, short settings
#   make bench      performance harness
#   make NATIVE=1   opt-in -march=native build (never the default)

PREFIX       ?= /usr/local
EXEC_PREFIX  ?= $(PREFIX)
LIBDIR       ?= $(EXEC_PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=

# One source of truth for the version: include/disrnn.h.
VMAJOR := $(shell sed -n 's/^\#define DISRNN_VERSION_MAJOR \([0-9]*\).*/\1/p' include/disrnn.h)
VMINOR := $(shell sed -n 's/^\#define DISRNN_VERSION_MINOR \([0-9]*\).*/\1/p' include/disrnn.h)
VPATCH := $(shell sed -n 's/^\#define DISRNN_VERSION_PATCH \([0-9]*\).*/\1/p' include/disrnn.h)
VERSION := $(VMAJOR).$(VMINOR).$(VPATCH)
# ABI number (the soname), decoupled from the release number; before 1.0 every minor may bump it.
ABI := 0
# Output folders (a separate BUILD/LIBOUT lets several builds share a tree).
BUILD ?= build
LIBOUT ?= lib
SONAME := libdisrnn.so.$(ABI)
SHLIB := $(LIBOUT)/libdisrnn.so.$(ABI).$(VMINOR).$(VPATCH)
STLIB := $(LIBOUT)/libdisrnn.a

CC ?= cc
OPT ?= -O2 -g
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wconversion
NATIVE_FLAGS := -march=native
ifeq ($(NATIVE),1)
OPT += $(NATIVE_FLAGS)
endif
BASE_CFLAGS := -std=c99 $(OPT) $(WARN) $(SANITIZE)
BASE_CPPFLAGS := -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
BLAS_LIBS ?= -llapacke -lopenblas
LIBS := $(BLAS_LIBS) -lm -lpthread

ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)
ALL_CPPFLAGS = $(BASE_CPPFLAGS) $(CPPFLAGS)
ALL_LDFLAGS = $(SANITIZE) $(LDFLAGS)

SRCS := $(sort $(wildcard src/*.c))
PIC_OBJS := $(patsubst src/%.c,$(BUILD)/pic/%.o,$(SRCS))
ST_OBJS := $(patsubst src/%.c,$(BUILD)/static/%.o,$(SRCS))
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_SUPPORT := $(sort $(wildcard tests/support_*.c))
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(sort $(wildcard examples/*.c)))
EXAMPLE_SUPPORT := $(sort $(wildcard examples/support/*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))

.PHONY: all lib shared static check check-all check-sanitize check-tsan test check-headers check-exports check-install docs demo bench \
        examples install install-headers install-shared install-static install-pc uninstall clean pc

all: lib

lib: shared static
shared: $(SHLIB) $(LIBOUT)/$(SONAME) $(LIBOUT)/libdisrnn.so
static: $(STLIB)

$(BUILD)/pic/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -DDISRNN_BUILDING_DLL -fPIC -fvisibility=hidden $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/static/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(SHLIB): $(PIC_OBJS) src/disrnn.map
	@mkdir -p $(LIBOUT)
	$(CC) -shared -fPIC -Wl,-soname,$(SONAME) -Wl,--version-script=src/disrnn.map -Wl,--no-undefined \
	    $(ALL_LDFLAGS) -o $@ $(PIC_OBJS) $(LIBS)

$(LIBOUT)/$(SONAME): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@
$(LIBOUT)/libdisrnn.so: $(LIBOUT)/$(SONAME)
	ln -sf $(SONAME) $@

$(STLIB): $(ST_OBJS)
	@mkdir -p $(LIBOUT)
	rm -f $@
	ar rcs $@ $(ST_OBJS)

# Tests link the static library so they can also reach internal functions (disrnn__*).
$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) tests/support.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(TEST_SUPPORT) $(STLIB) \
	    $(ALL_LDFLAGS) -lcmocka $(LIBS)

# Examples use only the public header (plus their own support code in examples/support/).
$(BUILD)/examples/%: examples/%.c $(EXAMPLE_SUPPORT) $(wildcard examples/support/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -Iexamples/support $(CPPFLAGS) -D_POSIX_C_SOURCE=200809L $(ALL_CFLAGS) -o $@ $< \
	    $(EXAMPLE_SUPPORT) $(STLIB) $(ALL_LDFLAGS) $(LIBS)

examples: $(EXAMPLES)

# `make check` is the README's test command: it installs missing Debian packages (or says how),
# then runs the unit tests, the header/export/install checks and the tests again under ASan+UBSan.
# Each test binary prints cmocka's summary; a data-dependent test skips when ../shared is absent.
check:
	@sh .ci/install-deps.sh test
	@$(MAKE) --no-print-directory check-all

check-all: test check-headers check-exports check-install check-sanitize check-tsan
	@echo "make check: all checks passed"

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
check-sanitize:
	@echo "== unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/sanitize LIBOUT=$(BUILD)/sanitize/lib OPT="-O1 -g" \
	    SANITIZE="$(SAN_FLAGS)" test

test: $(TEST_BINS)
	@fail=0; for t in $(TEST_BINS); do echo "== $$t"; $(VALGRIND) ./$$t || fail=1; done; \
	if [ $$fail -ne 0 ]; then echo "unit tests FAILED"; exit 1; fi

check-headers:
	@mkdir -p $(BUILD)/check
	printf '#include "disrnn.h"\nint main(void){return disrnn_version_number()>0?0:1;}\n' > $(BUILD)/check/h.c
	$(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -fsyntax-only $(BUILD)/check/h.c
	printf '#include "disrnn.h"\nint main(){return disrnn_version_number()>0?0:1;}\n' > $(BUILD)/check/h.cpp
	c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -fsyntax-only $(BUILD)/check/h.cpp

check-exports: $(SHLIB)
	@nm -D --defined-only $(SHLIB) | awk '$$2 ~ /^[TDB]$$/ {print $$3}' | sed 's/@.*//' | sort -u > $(BUILD)/exports.txt
	@if grep -v '^disrnn_' $(BUILD)/exports.txt; then echo "exported symbols without the disrnn_ prefix"; exit 1; fi
	@diff -u abi/exports.txt $(BUILD)/exports.txt || { echo "export list differs from abi/exports.txt"; exit 1; }
	@grep '^DISRNN_API' include/disrnn.h | sed 's/(.*//; s/.*[ *]//' | sort -u > $(BUILD)/declared.txt
	@diff -u $(BUILD)/declared.txt $(BUILD)/exports.txt || { echo "header declarations and exports differ"; exit 1; }
	@echo "exports: $$(wc -l < $(BUILD)/exports.txt) symbols, all disrnn_*, matching abi/exports.txt"

# Installs into a temporary prefix and builds downstream C and C++ programs with pkg-config only.
check-install: lib
	bash tests/check_install.sh

docs:
	doxygen docs/Doxyfile

# `make demo` is the README's main job: the paper's synthetic experiment with short settings.
# ThreadSanitizer over the test that uses different handles (and const calls) from several threads.
check-tsan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan LIBOUT=$(BUILD)/tsan/lib OPT="-O1 -g" \
	    SANITIZE="-fsanitize=thread" $(BUILD)/tsan/tests/test_threads
	OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1" ./$(BUILD)/tsan/tests/test_threads

demo:
	@sh .ci/install-deps.sh build
	@$(MAKE) --no-print-directory $(BUILD)/examples/synthetic
	./$(BUILD)/examples/synthetic --demo

bench: $(STLIB)
	$(MAKE) -C bench

pc:
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' pkgconfig/disrnn.pc.in > $(BUILD)/disrnn.pc

install: install-headers install-shared install-static install-pc
install-headers:
	install -d $(DESTDIR)$(INCLUDEDIR)
	install -m 644 include/disrnn.h $(DESTDIR)$(INCLUDEDIR)/disrnn.h
install-shared: shared
	install -d $(DESTDIR)$(LIBDIR)
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdisrnn.so
install-static: static
	install -d $(DESTDIR)$(LIBDIR)
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
install-pc: pc
	install -d $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(BUILD)/disrnn.pc $(DESTDIR)$(PKGCONFIGDIR)/disrnn.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/disrnn.h $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libdisrnn.so $(DESTDIR)$(LIBDIR)/libdisrnn.a \
	      $(DESTDIR)$(PKGCONFIGDIR)/disrnn.pc

clean:
	rm -rf $(BUILD) $(LIBOUT)/*.so* $(LIBOUT)/*.a docs/api

-include $(PIC_OBJS:.o=.d) $(ST_OBJS:.o=.d)
