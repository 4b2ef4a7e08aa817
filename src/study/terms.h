// The study's throughput model: for one (scenario, hardware row, device
// count) the training rate is limited by named terms, each computed from its
// own inputs (docs/study.md "The model"). Pure arithmetic, no I/O: the report,
// the calibration and the tests call the same function.
//
// Per optimizer step of N devices x B images (seconds):
//   compute  t_c = B x 3 x F / (peak x MFU x share)         F = forward FLOPs per image, share = the
//                                                           cores' share the ranks get (1 when dedicated)
//   sync     t_s = t_c x CV x E[max of N standard normals]  stragglers: each step waits for the slowest rank
//   comm     t_m = (1 - hidden) x 2 (N-1)/N x G / bw       ring all-reduce of G gradient bytes
//   input    t_i = B / (cores x decode+augment rate per core)
//   storage  t_r = N x B x bytes per image / (nodes x read bandwidth per node)
// A device computes, waits for stragglers and for the exposed communication
// in sequence; the loader threads and storage reads overlap with that. On CPU
// rows the loader shares the compute cores, so its time adds instead:
//   step = max(t_c + t_s + t_m [+ t_i on CPU], t_i [GPU/TPU], t_r),  rate = N x B / step.
// The binding term is the largest contributor to the step. A batch that does
// not fit in memory makes the configuration infeasible (rate 0), never slow.
#ifndef DP_STUDY_TERMS_H
#define DP_STUDY_TERMS_H
#include <stdint.h>

typedef enum { SM_COMPUTE, SM_SYNC, SM_COMM, SM_INPUT, SM_STORAGE, SM_MEMORY, SM_NTERMS } sm_term;
const char *sm_term_name(sm_term t);   // "compute", "stragglers", "communication", "input pipeline", ...

typedef struct {
  // Workload.
  double flops_fwd;          // forward FLOPs per image at the scenario's image size
  int64_t batch;             // per device
  double grad_bytes;         // bytes all-reduced per step (fp32 gradients)
  double bytes_per_image;    // encoded image size read from storage
  // Hardware and placement.
  int devices;
  int devices_per_node;      // > 0
  double peak_flops;         // per device at the run's precision
  double mfu;                // model FLOPs utilisation (0, 1] of a dedicated device
  double cpu_share;          // share of the cores the ranks get (shared machine; <= 0 or NAN: 1)
  double cores_per_device;   // host cores decoding for one device
  double input_rate_per_core;   // decode + augment img/s per core (<= 0: term not modelled)
  int input_shares_compute;  // 1: CPU rows, the loader runs on the compute cores
  double storage_bps;        // per node (<= 0: not modelled)
  double intra_bps, inter_bps;  // all-reduce bus bandwidth inside / between nodes (<= 0: not modelled)
  double hidden_fraction;    // measured share of the all-reduce hidden behind backward [0, 1]
  double step_cv;            // per-device step-time coefficient of variation (>= 0)
  int64_t max_batch;         // memory: largest batch that fits per device (< 0: unknown, = 0: none fits)
  double price_per_device_hour;
  double images, epochs;     // full run
} sm_input;

typedef struct {
  double t[SM_NTERMS];       // seconds per step of each term (memory: 0)
  double cap[SM_NTERMS];     // img/s each term alone would allow (INFINITY: no limit)
  double step_s, rate;       // rate = 0 when infeasible
  double bus_bps;            // the bandwidth the ring used
  int nodes;
  sm_term binding;
  int feasible;              // memory fits (or unknown)
  double time_s, cost_usd;   // full run (INFINITY when infeasible)
} sm_result;

// E[max of n independent standard normals] (exact for n <= 5, Blom's
// approximation above): the expected lead of the slowest of n ranks.
double sm_expected_max_normal(int n);
// Ring all-reduce time of `bytes` over n devices at bus bandwidth bw.
double sm_ring_allreduce_s(double bytes, int n, double bw);
void sm_evaluate(const sm_input *in, sm_result *out);
#endif
