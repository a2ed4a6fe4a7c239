/*
 * engine_bench.c - `effbench bench`: prefill and decode speed of one model, beside the
 * machine's limits measured in the same run (before and after the model runs; the
 * better of the two is the roofline). Markdown by default, or --format csv|json.
 */
#include "cli.h"
#include "measure.h"
#include "profile.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* Where each CPU cell's step goes: per op kind, the share of the step and, for decode,
 * the rate at which it read its bytes (weights as stored, KV cache), for prefill the
 * rate of its arithmetic (GFLOP/s, against the SGEMM rate measured in the same run). */
/* Split over ranks: each cell's step once more with its collectives counted, all ranks
 * summed, beside the bytes layout_predict expects (uniform routing: a slot leaves its
 * rank with probability (N-1)/N; the measured dispatch follows the step's routing). */
static void print_comm(const Cell *cells, int nc) {
    if (nc == 0 || cells[0].ranks <= 1) return;
    printf("\nCommunication of one step of each test, %d ranks (bytes sent, all ranks summed; float32 activations; "
           "predicted for uniform routing):\n\n| test | kind | measured bytes | predicted | measured / predicted |\n"
           "|---|---|---:|---:|---:|\n", cells[0].ranks);
    for (int i = 0; i < nc; i++) {
        const Cell *c = &cells[i];
        char name[64];
        if (c->kind == 'p') snprintf(name, sizeof name, "pp%d", c->p);
        else snprintf(name, sizeof name, "b%d @ d%d", c->b, c->d);
        for (int k = 0; k < CK_CONTROL; k++)
            if (c->comm_sent[k] > 0 || c->comm_pred[k] > 0)
                printf("| %s | %s | %.0f | %.0f | %.3f |\n", name, comm_kind_name(k), c->comm_sent[k], c->comm_pred[k],
                       c->comm_pred[k] > 0 ? c->comm_sent[k] / c->comm_pred[k] : 0);
        printf("| %s | rank 0 in collectives | %.2f ms of a %.2f ms step | | %.0f%% |\n", name, 1e3 * c->comm_sec, 1e3 * c->step_sec,
               c->step_sec > 0 ? 100 * c->comm_sec / c->step_sec : 0);
    }
}

static void print_op_shares(const Cell *cells, int nc) {
    int any = 0;
    for (int i = 0; i < nc; i++) any |= cells[i].has_ops;
    if (!any) return;
    printf("\nWhere a step's time goes (CPU; each op: share of the step / for decode GB/s of the weights and cache it read, "
           "for prefill GFLOP/s):\n\n| op |");
    for (int i = 0; i < nc; i++) {
        const Cell *c = &cells[i];
        if (!c->has_ops) continue;
        if (c->kind == 'p') printf(" pp%d |", c->p);
        else printf(" b%d @ d%d |", c->b, c->d);
    }
    printf("\n|---|");
    for (int i = 0; i < nc; i++) if (cells[i].has_ops) printf("---:|");
    printf("\n");
    for (int k = 0; k < OPK_COUNT; k++) {
        int used = 0;
        for (int i = 0; i < nc; i++) used |= cells[i].has_ops && cells[i].op_sec[k] > 0 && (cells[i].op_bytes[k] > 0 || k != OPK_SHARED);
        if (!used) continue;
        printf("| %s |", opk_name(k));
        for (int i = 0; i < nc; i++) {
            const Cell *c = &cells[i];
            if (!c->has_ops) continue;
            double tot = 0;
            for (int j = 0; j < OPK_COUNT; j++) tot += c->op_sec[j];
            char gb[32] = "";
            double v = c->kind == 'p' ? c->op_flops[k] : c->op_bytes[k];
            if (v > 0 && c->op_sec[k] > 0) snprintf(gb, sizeof gb, " / %.1f", v / c->op_sec[k] / 1e9);
            printf(" %.1f%%%s |", tot > 0 ? 100 * c->op_sec[k] / tot : 0, gb);
        }
        printf("\n");
    }
}


int cmd_bench(const Opts *o) {
    int *pp = NULL, *bb = NULL, *dd = NULL, np = 0, nb = 0, nd = 0;
    const char *fmt = o->format ? o->format : "md";
    if (strcmp(fmt, "md") && strcmp(fmt, "csv") && strcmp(fmt, "json")) {
        fprintf(stderr, "effbench bench: --format is md, csv or json, got \"%s\"\n", fmt);
        return -2;
    }
    EngineOpts eo;
    if (cli_engine(o, &eo)) return -1;
    if (parse_int_list(o->prefill ? o->prefill : "512", &pp, &np) ||
        parse_int_list(o->batches ? o->batches : "1,16", &bb, &nb) ||
        parse_int_list(o->depths ? o->depths : "1024", &dd, &nd)) {
        fprintf(stderr, "effbench bench: -p, -b and -d take comma-separated positive integers\n");
        free(pp); free(bb); free(dd);
        return -2;
    }
    int bad = 0;
    for (int i = 0; i < np; i++) bad |= pp[i] < 1;
    for (int i = 0; i < nb; i++) bad |= bb[i] < 1;
    for (int i = 0; i < nd; i++) bad |= dd[i] < 0;
    if (bad) {
        fprintf(stderr, "effbench bench: -p and -b values must be >= 1, -d values >= 0\n");
        free(pp); free(bb); free(dd);
        return -2;
    }
    int ngen = o->n_gen > 0 ? o->n_gen : 32, reps = o->reps;
    Model m;
    double t0 = now_sec();
    if (cli_load_model(o, &m)) { free(pp); free(bb); free(dd); return -1; }
    char stored[192] = "";
    int sl = 0;
    if (m.from_gguf) sl = snprintf(stored, sizeof stored, ", GGUF %s %.2f GB widened at load", m.stored, m.file_bytes / 1e9);
    if (m.copied_bytes)
        snprintf(stored + sl, sizeof stored - (size_t)sl, ", %.2f GB copied into huge pages while binding (%.1f s)", m.copied_bytes / 1e9, m.copy_sec);
    else if (m.copy_skipped)
        snprintf(stored + sl, sizeof stored - (size_t)sl, ", read from the file mapping: over 70%% of available memory");
    fprintf(stderr, "effbench: loaded %s (%s, %d layers, %s weights, %.2f GB%s) in %.1f s\n", o->model,
            m.cfg.model_type, m.cfg.n_layers, dtype_name(m.wdtype), m.weight_bytes / 1e9, stored, now_sec() - t0);
    int maxp = 1;
    for (int i = 0; i < np; i++) if (pp[i] > maxp) maxp = pp[i];
    Limits lim, lim2;
    Err e = { "" };
    Profiler *prof = NULL;
    if (limits_measure_for(&m, &eo, maxp, reps, (size_t)o->stream_mib, &lim, &e) ||
        ((o->profile || o->metrics) && profiler_open(&prof, o->profile ? o->profile : "profile", o->metrics, &e))) {
        fprintf(stderr, "effbench: %s\n", e.msg);
        free(pp); free(bb); free(dd);
        model_free(&m);
        return -1;
    }
    Cell *cells = xcalloc((size_t)(np + nb * nd), sizeof *cells);
    int nc = 0, rc = 0;
    Engine *g = NULL;
    if (cli_engine_open(&g, &m, &eo, 1, 1, 1)) {
        profiler_discard(prof);
        free(cells); free(pp); free(bb); free(dd);
        model_free(&m);
        return -1;
    }
    for (int i = 0; i < np + nb * nd && rc != -1; i++) {
        char name[64];
        int p = 0, b = 0, d = 0;
        if (i < np) { p = pp[i]; snprintf(name, sizeof name, "pp%d", p); }
        else { b = bb[(i - np) % nb]; d = dd[(i - np) / nb]; snprintf(name, sizeof name, "tg%d b%d @ d%d", ngen, b, d); }
        profiler_cell(prof, name);
        rc = i < np ? measure_prefill(g, p, reps, o->warmup, &cells[nc], &e)
                    : measure_decode(g, b, d, ngen, reps, o->warmup, &cells[nc], &e);
        if (!rc) rc = profiler_cell_done(prof, &cells[nc], g, &e);
        if (!rc) rc = measure_comm(g, &cells[nc], &e);
        if (!rc) nc++;
        else if (rc == -2) fprintf(stderr, "effbench: %s skipped: %s\n", name, e.msg);    /* does not fit: the next may */
    }
    if (rc == -2) rc = 0;
    engine_close(g);
    if (rc) fprintf(stderr, "effbench: %s\n", e.msg);
    if (prof && profiler_close(prof, &e)) { fprintf(stderr, "effbench: %s\n", e.msg); if (!rc) rc = -1; }
    Err e2 = { "" };
    if (limits_measure_for(&m, &eo, maxp, reps, (size_t)o->stream_mib, &lim2, &e2)) lim2 = lim;
    if (eo.backend == BACKEND_CUDA)
        fprintf(stderr, "effbench: GPU limits before/after: read %.0f/%.0f GB/s, cuBLAS %.1f/%.1f TFLOP/s (8192^3)\n",
                lim.read_gbs, lim2.read_gbs, lim.peak_gflops / 1e3, lim2.peak_gflops / 1e3);
    else fprintf(stderr, "effbench: limits before/after: triad %.2f/%.2f GB/s, read %.2f/%.2f GB/s, SGEMM %.1f/%.1f GFLOP/s "
            "(M=%d), %.1f/%.1f (M=%d)\n", lim.triad_gbs, lim2.triad_gbs, lim.read_gbs, lim2.read_gbs,
            lim.sgemm_gflops, lim2.sgemm_gflops, lim.m_prefill, lim.peak_gflops, lim2.peak_gflops, lim.m_peak);
    limits_best(&lim, &lim2);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = ru.ru_maxrss * 1024.0;
    int threads = omp_get_max_threads();
    const char *bname = eo.backend == BACKEND_CUDA ? "cuda" : "cpu", *wdt = nc ? cells[0].dtype : dtype_name(m.wdtype);
    if (!strcmp(fmt, "md")) {
        printf("## effbench bench: %s\n\n", o->model);
        printf("model %s, %d layers%s, weights %s %.3f GB (held as %s%s), threads %d, backend %s%s%s, %s\n\n", m.cfg.model_type,
               m.cfg.n_layers, o->load.layers ? " (cut)" : "", dtype_name(m.wdtype), m.weight_bytes / 1e9, wdt, stored, threads, bname,
               nc ? " on " : "", nc ? cells[0].device : "",
               m.cfg.is_mla ? (o->load.naive_mla ? "naive MLA" : "absorbed MLA") : "dense attention");
        if (eo.backend == BACKEND_CUDA)
            printf("GPU: read bandwidth %.0f GB/s (2 GiB, best of 5); cuBLAS %s 8192^3 %.1f TFLOP/s; CUDA graphs %s\n\n",
                   lim.read_gbs, wdt, lim.peak_gflops / 1e3, eo.no_graphs ? "off" : "on for decode");
        else printf("machine: STREAM triad %.2f GB/s, read-only %.2f GB/s (best of 5, %d MiB arrays); OpenBLAS SGEMM on this "
               "model's shapes (its own threads) %.1f GFLOP/s at M=%d, %.1f at M=%d\n\n", lim.triad_gbs, lim.read_gbs,
               o->stream_mib, lim.sgemm_gflops, lim.m_prefill, lim.peak_gflops, lim.m_peak);
        printf("| test | tokens/s | ms/step (median) | min | max | p99 | GFLOP/s | GB/s | bound | roofline tokens/s | of roofline | of read-only BW |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
    } else if (!strcmp(fmt, "csv")) {
        printf("test,prompt,batch,depth,steps,reps,tokens_per_s,median_ms,min_ms,max_ms,sd_ms,p50_ms,p90_ms,p99_ms,"
               "gflops,gbs,bound,roofline_tokens_per_s,of_roofline,threads,weights_dtype,backend,device,read_gbs,of_read_bw,"
               "ranks,layout,comm_bytes_per_step,comm_predicted_bytes,comm_share\n");
    }
    for (int i = 0; i < nc; i++) {
        const Cell *c = &cells[i];
        int mem;
        double troof = cell_roofline_s(c, &lim, &mem);
        int ntok = c->kind == 'p' ? c->p : c->b;
        double gbs = c->kind == 'g' ? c->bytes / c->med / 1e9 : 0;
        char name[64];
        if (c->kind == 'p') snprintf(name, sizeof name, "pp%d", c->p);
        else snprintf(name, sizeof name, "tg%d b%d @ d%d", c->n, c->b, c->d);
        if (!strcmp(fmt, "md")) {
            char gb[32] = "", rd[32] = "";
            if (c->kind == 'g') { snprintf(gb, sizeof gb, "%.2f", gbs); snprintf(rd, sizeof rd, "%.0f%%", 100 * gbs / lim.read_gbs); }
            if (m.sh.n > 1)        /* FLOPs, bytes and roofline are whole-model figures: not a rank's */
                printf("| %s | %.1f | %.2f | %.2f | %.2f | %.2f | - | - | - | - | - | - |\n", name, c->tokens_per_s,
                       1e3 * c->med, 1e3 * c->min, 1e3 * c->max, 1e3 * c->p99);
            else
                printf("| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.1f | %s | %s | %.1f | %.0f%% | %s |\n", name, c->tokens_per_s,
                       1e3 * c->med, 1e3 * c->min, 1e3 * c->max, 1e3 * c->p99, c->flops / c->med / 1e9, gb,
                       mem ? "memory" : "compute", ntok / troof, 100 * troof / c->med, rd);
        } else if (!strcmp(fmt, "csv")) {
            double cs = 0, cp = 0;
            for (int k = 0; k < CK_CONTROL; k++) { cs += c->comm_sent[k]; cp += c->comm_pred[k]; }
            char lay[32] = "-";
            if (m.sh.n > 1) snprintf(lay, sizeof lay, "tp%d ep%d", m.sh.tp, m.sh.ep);
            printf("%s,%d,%d,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%.6g,%.4f,%d,%s,%s,\"%s\",%.6g,%.4f,"
                   "%d,%s,%.0f,%.0f,%.4f\n",
                   c->kind == 'p' ? "prefill" : "decode", c->p, c->b, c->d, c->n, c->reps, c->tokens_per_s, 1e3 * c->med,
                   1e3 * c->min, 1e3 * c->max, 1e3 * c->sd, 1e3 * c->p50, 1e3 * c->p90, 1e3 * c->p99,
                   c->flops / c->med / 1e9, gbs, mem ? "memory" : "compute", ntok / troof, troof / c->med, threads,
                   c->dtype, c->backend, c->device, lim.read_gbs, c->kind == 'g' ? gbs / lim.read_gbs : 0.0,
                   m.sh.n, lay, cs, cp, c->step_sec > 0 ? c->comm_sec / c->step_sec : 0.0);
        } else {
            printf("%s{\"test\": \"%s\", \"prompt\": %d, \"batch\": %d, \"depth\": %d, \"steps\": %d, \"reps\": %d, "
                   "\"tokens_per_s\": %.6g, \"median_ms\": %.6g, \"min_ms\": %.6g, \"max_ms\": %.6g, \"sd_ms\": %.6g, "
                   "\"p50_ms\": %.6g, \"p90_ms\": %.6g, \"p99_ms\": %.6g, \"gflops\": %.6g, \"gbs\": %.6g, \"bound\": \"%s\", "
                   "\"roofline_tokens_per_s\": %.6g, \"of_roofline\": %.4f}%s\n", i ? "" : "[", c->kind == 'p' ? "prefill" : "decode",
                   c->p, c->b, c->d, c->n, c->reps, c->tokens_per_s, 1e3 * c->med, 1e3 * c->min, 1e3 * c->max, 1e3 * c->sd,
                   1e3 * c->p50, 1e3 * c->p90, 1e3 * c->p99, c->flops / c->med / 1e9, gbs, mem ? "memory" : "compute",
                   ntok / troof, troof / c->med, i + 1 < nc ? "," : "]");
        }
    }
    if (!strcmp(fmt, "json") && nc == 0) printf("[]\n");
    if (!strcmp(fmt, "md") && eo.backend == BACKEND_CUDA) {
        printf("\nRoofline on the GPU: prefill = FLOPs / the cuBLAS 8192^3 rate; decode per step = max(bytes read / "
               "measured read bandwidth, FLOPs / that rate); bytes read = weights touched as stored on the host (%s) + KV "
               "cache. Medians of %d runs after %d warm-up; p99 by nearest rank over all steps.\n", dtype_name(m.wdtype),
               reps, o->warmup);
    } else if (!strcmp(fmt, "md")) {
        double kvmax = 0;
        for (int i = 0; i < nc; i++) if (cells[i].kv_bytes > kvmax) kvmax = (double)cells[i].kv_bytes;
        printf("\npeak RSS %.3f GB; weights %.3f GB + made at load (MLA: float32 kv_b, W_UK transposed) %.3f GB + largest KV cache %.3f GB.\n"
               "Prefill roofline: SGEMM at M = prefill length (float32 products; the int8 and BF16 tiles of --products low "
               "do more multiply-adds per instruction than SGEMM and can pass it). Decode roofline time per step = max(bytes read / STREAM triad, "
               "FLOPs / SGEMM at M=%d); bytes read = weights touched (all but the unselected experts; expected distinct experts "
               "for a batch) + KV cache. Medians of %d runs after %d warm-up; p99 by nearest rank over all steps.\n",
               rss / 1e9, m.weight_bytes / 1e9, m.derived_bytes / 1e9, kvmax / 1e9, lim.m_peak, reps, o->warmup);
    }
    if (!strcmp(fmt, "md") && m.sh.n > 1)
        printf("\nSplit over %d ranks: GFLOP/s, GB/s and the roofline columns are left out (the analytic FLOPs and bytes are "
               "the whole model's, the time a rank's); the op table is rank 0's.\n", m.sh.n);
    if (!strcmp(fmt, "md")) { print_op_shares(cells, nc); print_comm(cells, nc); }
    for (int i = 0; i < nc; i++) free(cells[i].comm_detail);
    free(cells); free(pp); free(bb); free(dd);
    model_free(&m);
    return rc;
}

/* `effbench profile`: bench on the GPU with CUPTI tracing (default directory: profile) */
int cmd_profile(const Opts *o) {
    Opts p = *o;
    if (!p.backend) p.backend = "cuda";
    if (!p.profile) p.profile = "profile";
    return cmd_bench(&p);
}
