# ustack build. Everything lands under build/: build/lib (libustack.a,
# libustack.so), build/bin (programs), build/tests (unit tests and test tools),
# build/asan (the same unit tests under ASan+UBSan), build/fuzz (libFuzzer).
#
# New sources are picked up by pattern, so adding a module never edits this file:
#   src/*/*.c          -> libustack
#   tools/*.c          -> build/bin/<name>          (one program per file)
#   tests/unit/test_*.c -> build/tests/test_*       (one test binary per file)
#   tests/tools/*.c    -> build/tests/bin/<name>    (helpers used by interop tests)
#   tests/fuzz/fuzz_*.c -> build/fuzz/fuzz_*        (libFuzzer targets, clang)

CC       ?= gcc
FUZZ_CC  ?= clang
.DEFAULT_GOAL := all

SOVER    := 0
VERSION  := 0.1.0
PREFIX   ?= /usr/local
B        ?= build

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-missing-field-initializers
BASE     := -std=gnu11 -g -D_GNU_SOURCE -Iinclude -Isrc $(WARN)
CFLAGS   ?= -O2
ALL_CFLAGS := $(BASE) $(CFLAGS) -fPIC -fvisibility=hidden
LDLIBS   := -lm

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_CFLAGS := $(BASE) -O1 $(SAN)

LIB_SRC   := $(sort $(wildcard src/*/*.c src/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TTOOL_SRC := $(sort $(wildcard tests/tools/*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TLIB_SRC  := $(sort $(wildcard tests/lib/*.c))
HDRS      := $(wildcard include/ustack/*.h src/*/*.h tests/lib/*.h)

LIB_OBJ   := $(LIB_SRC:%.c=$(B)/obj/%.o)

# DPDK backend (src/dev/dpdk/dpdk.c), only when libdpdk is installed; without
# it src/dev/dpdk_absent.c answers "dpdk:" with a message. DPDK's headers are
# system headers here (-isystem), so -Werror judges only our code. The DPDK
# libraries are then linked into libustack and every program (--as-needed).
DPDK_OK   := $(shell pkg-config --exists libdpdk 2>/dev/null && echo yes)
ifeq ($(DPDK_OK),yes)
DPDK_OBJ  := $(B)/obj/src/dev/dpdk/dpdk.o
LIB_OBJ   := $(filter-out $(B)/obj/src/dev/dpdk_absent.o,$(LIB_OBJ)) $(DPDK_OBJ)
$(DPDK_OBJ): ALL_CFLAGS += $(patsubst -I%,-isystem %,$(shell pkg-config --cflags libdpdk))
LDLIBS    += $(shell pkg-config --libs libdpdk)
PC_LIBS_PRIVATE += $(shell pkg-config --libs libdpdk)
endif

# AF_XDP backend (src/dev/afxdp/*.c), only when libxdp and libbpf are
# installed; without them src/dev/afxdp_absent.c answers "afxdp:" with a
# message. The two libraries are then linked into libustack and the programs.
XDP_OK    := $(shell pkg-config --exists libxdp libbpf 2>/dev/null && echo yes)
ifeq ($(XDP_OK),yes)
XDP_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard src/dev/afxdp/*.c)))
LIB_OBJ   := $(filter-out $(B)/obj/src/dev/afxdp_absent.o,$(LIB_OBJ)) $(XDP_OBJ)
$(XDP_OBJ): $(wildcard src/dev/afxdp/*.h)
LDLIBS    += $(shell pkg-config --libs libxdp libbpf)
PC_LIBS_PRIVATE += $(shell pkg-config --libs libxdp libbpf)
endif
SAN_OBJ   := $(LIB_SRC:%.c=$(B)/asan/obj/%.o)
FUZZ_OBJ  := $(LIB_SRC:%.c=$(B)/fuzz/obj/%.o)
PROGS     := $(TOOL_SRC:tools/%.c=$(B)/bin/%)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%)
TTOOLS    := $(TTOOL_SRC:tests/tools/%.c=$(B)/tests/bin/%)
SAN_TESTS := $(TEST_SRC:tests/unit/%.c=$(B)/asan/tests/%)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

STATIC    := $(B)/lib/libustack.a
SHARED    := $(B)/lib/libustack.so.$(VERSION)

.PHONY: all lib programs tests asan fuzz demo test bench deps clean install
all: lib programs tests

lib: $(STATIC) $(SHARED)
programs: $(PROGS)
tests: $(TESTS) $(TTOOLS)
asan: $(SAN_TESTS)
fuzz: $(FUZZERS)

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libustack.so.$(SOVER) -o $@ $^ $(LDLIBS)
	ln -sf libustack.so.$(VERSION) $(B)/lib/libustack.so.$(SOVER)
	ln -sf libustack.so.$(SOVER) $(B)/lib/libustack.so

$(B)/bin/%: tools/%.c $(STATIC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(TLIB_SRC) $(STATIC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -Itests/lib $< $(TLIB_SRC) -o $@ $(STATIC) $(LDLIBS)

$(B)/tests/bin/%: tests/tools/%.c $(STATIC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -Itests/lib $< -o $@ $(STATIC) $(LDLIBS)

$(B)/asan/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

$(B)/asan/tests/%: tests/unit/%.c $(TLIB_SRC) $(SAN_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests/lib $< $(TLIB_SRC) -o $@ $(SAN_OBJ) $(LDLIBS)

$(B)/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE) -O1 -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(B)/fuzz/%: tests/fuzz/%.c $(TLIB_SRC) $(FUZZ_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE) -O1 -Itests/lib -fsanitize=fuzzer,address,undefined $< $(TLIB_SRC) -o $@ $(FUZZ_OBJ) $(LDLIBS)

# The packetdrill adapter (docs/PACKETDRILL.md): tools/packetdrill/*.c linked
# with the library's (-fPIC) objects into one shared object that exports only
# packetdrill_interface_init.
PD_SRC    := $(sort $(wildcard tools/packetdrill/*.c))
PD_OBJ    := $(PD_SRC:%.c=$(B)/obj/%.o)
PD_SO     := $(B)/lib/libustack-packetdrill.so
all: $(PD_SO)
$(PD_OBJ): $(wildcard tools/packetdrill/*.h)
$(PD_SO): $(PD_OBJ) $(LIB_OBJ) tools/packetdrill/exports.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,--version-script=tools/packetdrill/exports.map -o $@ $(PD_OBJ) $(LIB_OBJ) $(LDLIBS)

deps:
	@scripts/deps.sh

demo: deps all
	@scripts/demo.sh

test: deps
	@$(MAKE) --no-print-directory all asan fuzz
	@tests/run.sh

# The kernel-vs-ustack matrix (scripts/bench.sh; BENCH_SECONDS, HOLD_CONNS):
# prints the table and rewrites BENCHMARKS.md.
bench: programs
	@B=$(B) scripts/bench.sh

install: lib programs
	install -d $(DESTDIR)$(PREFIX)/include/ustack $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/ustack/*.h $(DESTDIR)$(PREFIX)/include/ustack/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libustack.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libustack.so.$(SOVER)
	ln -sf libustack.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libustack.so
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(PC_LIBS_PRIVATE))|g' ustack.pc.in > $(B)/ustack.pc
	install -m 644 $(B)/ustack.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ustack.pc

clean:
	rm -rf $(B)
