/* fuzz_csv.c - the CSV reader behind `effbench report` and `compare`, and a write
 * back of what it read (which must read back the same). */
#include "fuzz_common.h"
#include "table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[512], q[512];
    fuzz_file("in.csv", data, size, p, sizeof p);
    Table t, u;
    Err e;
    if (csv_table_read(p, &t, &e) == 0) {
        (void)table_num(&t, 0, "tokens_per_s");
        snprintf(q, sizeof q, "%s/out.csv", fuzz_dir());
        if (csv_table_write(q, &t, &e) == 0 && csv_table_read(q, &u, &e) == 0) {
            if (u.nrow != t.nrow || u.ncol != t.ncol) abort();     /* a round trip keeps the shape */
            table_free(&u);
        }
        table_free(&t);
    }
    return 0;
}
