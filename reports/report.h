/*
 * report.h - summary.md and the charts of a run directory, from its CSV files alone.
 *
 * Read (all written by the runner, bench/runner.c, which computes every figure):
 *   results.csv    measured cells
 *   evals.csv      measured evals
 *   analytic.csv   every model through the analytic model
 *   kv.csv         KV-cache bytes per sequence against context length, per model
 *   cost.csv       the suite's training-cost scenarios
 *   published.csv  published scores and training figures, each with its source
 *   accuracy.csv   the points of the accuracy charts, measured and published
 *   skipped.csv    optional models whose file was missing
 * Written:
 *   summary.md     the key tables
 *   *.gp + .png + .svg  charts; each script reads a chart_*.dat file beside it, so a
 *                  user can edit and re-run it (cd DIR && gnuplot NAME.gp)
 * Strings from CSV files reach charts only through the .dat files (never the scripts)
 * and summary.md only escaped. Nothing here reads a suite, config or checkpoint.
 */
#ifndef EFFBENCH_REPORT_H
#define EFFBENCH_REPORT_H

#include "table.h"

#include <stdio.h>

/* summary.md and charts from the CSV files in dir */
int report_render(const char *dir, Err *e);

/* Writes s as one Markdown table cell: pipes and markup escaped, no newlines. */
void report_md(FILE *f, const char *s);

/* charts.c: writes the chart data and scripts, and renders them if gnuplot is
 * installed; returns the number of charts rendered */
int charts_write(const char *dir, Err *e);
/* kernel_roofline.png/.svg of a profile's metrics.csv under the given roofs */
int chart_kernel_roofline(const char *dir, const Table *t, double gbs, double gflops, Err *e);

#endif
