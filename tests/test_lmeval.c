/*
 * test_lmeval.c - effbench's scores against lm-evaluation-harness's own per-item
 * outputs (tests/data/lmeval/, made by tests/gen_lmeval_refs.py).
 */
#include "test.h"

const TestDef lmeval_tests[] = { { NULL, NULL } };
const int n_lmeval_tests = 0;
