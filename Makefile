# effbench - build, test and run.
#   make          build ./effbench
#   make run      install missing packages, build, run the default benchmark
#   make test     install missing packages, build, run every test
#   make asan     the whole test suite under AddressSanitizer + UBSan
# Variables: CC, OPT (default -O2 -march=native), NO_NATIVE=1 for portable builds.

CC      ?= cc
OPT     ?= -O3 $(if $(NO_NATIVE),,-march=native)
WARN    := -Wall -Wextra -Wshadow -Wno-unknown-pragmas
CFLAGS  ?= $(OPT) -g
ALLCFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -fopenmp -Ikernels -Ibench -Ireports \
            $(shell pkg-config --cflags libcjson openblas 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs libcjson openblas 2>/dev/null || echo -lcjson -lopenblas) -lcsv -lm
BUILD   ?= build

KERNEL_SRC := kernels/common.c kernels/config.c kernels/safetensors.c kernels/ops.c \
              kernels/model.c kernels/forward.c
# everything but the command-line front end; the tests link it too
CORE_SRC   := $(KERNEL_SRC) bench/analytic.c bench/cost.c bench/suite.c bench/measure.c \
              reports/table.c reports/report.c reports/charts.c
BENCH_SRC  := bench/main.c bench/run_model.c bench/engine_bench.c bench/info_cost.c bench/runner.c \
              bench/report_cmd.c
TEST_SRC   := tests/test_main.c tests/test_units.c tests/test_golden.c tests/test_badinput.c \
              tests/st_write.c tests/test_runner.c

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ  := $(BENCH_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)
GIT_REV    := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILD_INFO := -DEFFBENCH_COMMIT='"$(GIT_REV)"' -DEFFBENCH_CFLAGS='"$(strip $(CFLAGS))"'

EFFBENCH ?= effbench
TESTS    ?= effbench-tests

.PHONY: all deps run test asan clean
all: $(EFFBENCH) $(TESTS)

deps:
	@sh scripts/deps.sh

$(EFFBENCH): $(CORE_OBJ) $(BENCH_OBJ)
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(TESTS): $(CORE_OBJ) $(TEST_OBJ)
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard kernels/*.h bench/*.h reports/*.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(BUILD_INFO) -c -o $@ $<

# The main job: the default suite (suites/default.json) into out/default.
run: deps
	@$(MAKE) --no-print-directory all
	./effbench run suites/default.json -o out/default $(if $(wildcard out/default/results.csv),--resume)

test: deps
	@$(MAKE) --no-print-directory all
	sh tests/run.sh ./effbench-tests ./effbench

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan EFFBENCH=build-asan/effbench TESTS=build-asan/effbench-tests \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-asan/effbench-tests build-asan/effbench

clean:
	rm -rf build build-asan effbench effbench-tests
