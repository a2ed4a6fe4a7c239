/* fuzz_task.c - task JSON Lines (type inferred) and task definitions. */
#include "eval.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[512];
    Task t;
    Err e;
    fuzz_file("task.jsonl", data, size, p, sizeof p);
    if (task_load(p, &t, &e) == 0) task_free(&t);
    /* the same bytes as a definition naming task.jsonl beside it */
    fuzz_file("task.json", data, size, p, sizeof p);
    if (task_load(p, &t, &e) == 0) task_free(&t);
    return 0;
}
