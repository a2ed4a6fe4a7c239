/*
 * fuzz_common.h - helpers for the libFuzzer targets: the input as a real file (the
 * parsers under test open, mmap and read files exactly as in use).
 */
#ifndef EFFBENCH_FUZZ_COMMON_H
#define EFFBENCH_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A private directory for this process under /dev/shm (tmpfs), made once. */
static inline const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/effbench-fuzz-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

/* Writes data to dir/name; returns the path (static buffer per call site use). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size, char *path, size_t len) {
    snprintf(path, len, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    return path;
}

#endif
