// SVG plots of the study report, written through core/afile.h:
//  - cost vs time of every feasible configuration of a scenario (log-log),
//    coloured by option class, with the Pareto front, the deadline and the
//    budget lines, and the production / fallback picks ringed;
//  - measured throughput vs ranks, one line per series (same model, image
//    size, batch and hardware: never merged), with the ideal linear line.
#ifndef DP_STUDY_PLOTS_H
#define DP_STUDY_PLOTS_H
#include "study/decide.h"
#include "study/runs.h"

// Returns 0, or -1 with err filled (the path and the reason).
int plot_cost_time(const char *path, const char *title, const dc_grid *g, const dc_opts *o, char *err, int err_sz);
// Number of series drawn (0: nothing to draw, no file written), -1 on error.
int plot_scaling(const char *path, const sr_set *runs, char *err, int err_sz);
// Indices of the Pareto front (no other point is both faster and cheaper),
// sorted by time; returns their count. Only feasible, runnable configs.
int pareto_front(const dc_grid *g, int *idx);
#endif
