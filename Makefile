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
ALLCFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -fopenmp -Ikernels -Ibench \
            $(shell pkg-config --cflags libcjson openblas 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs libcjson openblas 2>/dev/null || echo -lcjson -lopenblas) -lcsv -lm
BUILD   ?= build

KERNEL_SRC := kernels/common.c kernels/config.c kernels/safetensors.c kernels/ops.c \
              kernels/model.c kernels/forward.c
BENCH_SRC  := bench/main.c bench/run_model.c bench/engine_bench.c
TEST_SRC   := tests/test_main.c tests/test_units.c tests/test_golden.c tests/test_badinput.c \
              tests/st_write.c

KERNEL_OBJ := $(KERNEL_SRC:%.c=$(BUILD)/%.o)
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

$(EFFBENCH): $(KERNEL_OBJ) $(BENCH_OBJ)
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(TESTS): $(KERNEL_OBJ) $(TEST_OBJ)
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard kernels/*.h bench/*.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(BUILD_INFO) -c -o $@ $<

# The main job. Until the suite runner exists this is the engine benchmark on a
# DeepSeek-V2-Lite-shaped model with dummy BF16 weights, cut to 2 layers.
run: deps
	@$(MAKE) --no-print-directory all
	./effbench bench --model suites/configs/deepseek-v2-lite.json --dummy --dtype bf16 --layers 2 \
	    -p 128 -b 1,4 -d 256 -n 8 -r 3 --stream-mib 256

test: deps
	@$(MAKE) --no-print-directory all
	sh tests/run.sh ./effbench-tests ./effbench

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan EFFBENCH=build-asan/effbench TESTS=build-asan/effbench-tests \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-asan/effbench-tests build-asan/effbench

clean:
	rm -rf build build-asan effbench effbench-tests
