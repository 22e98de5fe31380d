/* bench_merge.h - `echobench merge`: several --json reports into one, with
 * histograms added exactly (client/bench_merge.c). */
#ifndef ECHOD_BENCH_MERGE_H
#define ECHOD_BENCH_MERGE_H

#include "client/bench.h"

/* argv[0] is "merge"; returns the exit status (0, 1 some requests failed,
 * 2 the reports cannot be merged). */
int bench_merge_main(int argc, char **argv);

#endif
