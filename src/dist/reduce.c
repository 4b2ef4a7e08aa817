// Bucketed gradient all-reduce over MPI, overlapped with backward (see dist.h).
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "dist/watchdog.h"

#define DEFAULT_BUCKET_BYTES ((int64_t)25 << 20)
#define DEFAULT_FIRST_BYTES ((int64_t)1 << 20)

void grad_reducer_init(grad_reducer *r, dist_ctx *d, float *grads, int64_t n, int64_t bucket_bytes,
                       int64_t first_bucket_bytes) {
  memset(r, 0, sizeof *r);
  if (n < 0) DP_FATAL("gradient buckets", "model builder bug", "negative gradient size %lld", (long long)n);
  if (bucket_bytes <= 0) bucket_bytes = DEFAULT_BUCKET_BYTES;
  if (first_bucket_bytes <= 0) first_bucket_bytes = DEFAULT_FIRST_BYTES;
  int64_t be = bucket_bytes / 4 > 0 ? bucket_bytes / 4 : 1;
  int64_t fe = first_bucket_bytes / 4 > 0 ? first_bucket_bytes / 4 : 1;
  if (be > INT_MAX || fe > INT_MAX)
    DP_FATAL("gradient buckets", "use buckets below 8 GB", "bucket of %lld elements exceeds an MPI count",
             (long long)(be > fe ? be : fe));
  r->d = d;
  r->grads = grads;
  r->n = n;
  r->bytes = n * 4;
  r->last_hidden_fraction = -1;
  // Layout: a small first bucket (backward produces it first, so it starts
  // early), a small last bucket (produced at the very end of backward, so its
  // transfer cannot hide; small keeps the exposed part short), and the middle
  // cut into equal buckets of at most bucket_bytes.
  int64_t head = fe < n ? fe : n;
  int64_t tail = (n - head > fe) ? fe : 0;
  int64_t mid = n - head - tail;
  int64_t nmid = mid > 0 ? (mid + be - 1) / be : 0;
  int nb = (head > 0) + (int)nmid + (tail > 0);
  r->nbuckets = nb;
  r->bucket_lo = dp_calloc((size_t)(nb ? nb : 1), sizeof(int64_t), "gradient buckets");
  r->bucket_hi = dp_calloc((size_t)(nb ? nb : 1), sizeof(int64_t), "gradient buckets");
  r->req = dp_calloc((size_t)(nb ? nb : 1), sizeof(MPI_Request), "gradient buckets");
  r->done = dp_calloc((size_t)(nb ? nb : 1), sizeof(int), "gradient buckets");
  r->idx = dp_calloc((size_t)(nb ? nb : 1), sizeof(int), "gradient buckets");
  // Boundaries: [0, head), then head + mid * k / nmid for k = 1..nmid (sizes
  // within one element of each other), then the tail.
  for (int b = 0; b < nb; b++) {
    int64_t lo, hi;
    if (b == 0) {
      lo = 0;
      hi = head;
    } else if (b <= nmid) {
      lo = head + mid * (b - 1) / nmid;
      hi = head + mid * b / nmid;
    } else {
      lo = n - tail;
      hi = n;
    }
    r->bucket_lo[b] = lo;
    r->bucket_hi[b] = hi;
    r->req[b] = MPI_REQUEST_NULL;
  }
  r->comm = MPI_COMM_NULL;
  if (d->world > 1) MPI_CHECK(MPI_Comm_dup(d->comm, &r->comm), "duplicating the communicator for gradients");
  r->next = nb;   // nothing in flight until grad_reducer_begin
}

void grad_reducer_free(grad_reducer *r) {
  for (int b = 0; b < r->nbuckets; b++)
    if (r->req[b] != MPI_REQUEST_NULL) MPI_Wait(&r->req[b], MPI_STATUS_IGNORE);
  if (r->comm != MPI_COMM_NULL) MPI_Comm_free(&r->comm);
  free(r->bucket_lo);
  free(r->bucket_hi);
  free(r->req);
  free(r->done);
  free(r->idx);
  memset(r, 0, sizeof *r);
}

void grad_reducer_begin(grad_reducer *r, int enabled) {
  for (int b = 0; b < r->nbuckets; b++)
    if (r->req[b] != MPI_REQUEST_NULL)
      DP_FATAL("gradient buckets", "call grad_reducer_wait after every enabled backward",
               "bucket %d still in flight at the next begin", b);
  r->enabled = enabled && r->d->world > 1;
  r->next = 0;
  memset(r->done, 0, sizeof(int) * (size_t)(r->nbuckets ? r->nbuckets : 1));
  r->last_started_early = 0;
  r->last_comm_span_s = 0;
}

static void start_bucket(grad_reducer *r, int b) {
  if (b == 0) r->span_start = dp_now();
  int64_t lo = r->bucket_lo[b];
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, r->grads + lo, (int)(r->bucket_hi[b] - lo), MPI_FLOAT, MPI_SUM,
                           r->comm, &r->req[b]),
            "starting a gradient bucket all-reduce");
}

static void scale_bucket(grad_reducer *r, int b) {
  float s = 1.0f / (float)r->d->world;
  float *restrict x = r->grads + r->bucket_lo[b];
  int64_t n = r->bucket_hi[b] - r->bucket_lo[b];
  for (int64_t i = 0; i < n; i++) x[i] *= s;
  r->done[b] = 1;
}

// Polls the buckets in flight (this is what makes libnbc progress) and scales
// the ones that completed.
static void poll_started(grad_reducer *r) {
  if (r->next == 0) return;
  int outcount = 0;
  MPI_CHECK(MPI_Testsome(r->next, r->req, &outcount, r->idx, MPI_STATUSES_IGNORE),
            "polling gradient all-reduces");
  if (outcount == MPI_UNDEFINED) return;
  for (int k = 0; k < outcount; k++) scale_bucket(r, r->idx[k]);
}

void grad_reducer_ready(void *ctx, int64_t ready_upto) {
  grad_reducer *r = ctx;
  if (!r->enabled) return;
  while (r->next < r->nbuckets && r->bucket_hi[r->next] <= ready_upto) {
    start_bucket(r, r->next++);
    r->last_started_early++;
  }
  poll_started(r);
}

void grad_reducer_wait(grad_reducer *r) {
  if (!r->enabled) return;
  double t0 = dp_now();
  // Backward is over: start what the ready callbacks did not (the last call
  // normally covers everything; this also makes wait safe without them).
  while (r->next < r->nbuckets) start_bucket(r, r->next++);
  // Scale each bucket as it lands, overlapping the scaling with the rest.
  for (;;) {
    int b = dist_wait_any(r->d, r->nbuckets, r->req, "the gradient all-reduce");
    if (b == MPI_UNDEFINED) break;
    scale_bucket(r, b);
  }
  double t1 = dp_now();
  r->last_wait_s = t1 - t0;
  r->last_comm_span_s = r->nbuckets ? t1 - r->span_start : 0;
  r->wait_s += r->last_wait_s;
  r->steps++;
  r->last_hidden_fraction = -1;
  if (r->ref_s > 0) {
    double h = 1.0 - r->last_wait_s / r->ref_s;
    r->last_hidden_fraction = h < 0 ? 0 : (h > 1 ? 1 : h);
  }
  r->enabled = 0;
}

void grad_reducer_calibrate(grad_reducer *r, int reps) {
  if (r->d->world <= 1 || r->n == 0) return;
  if (reps < 1) reps = 1;
  float *tmp = dp_aligned_alloc(64, (size_t)r->n * 4, "all-reduce calibration buffer");
  memset(tmp, 0, (size_t)r->n * 4);
  double best = 1e300;
  for (int k = 0; k < reps; k++) {
    MPI_CHECK(MPI_Barrier(r->comm), "calibrating the all-reduce");
    double t0 = dp_now();
    for (int64_t o = 0; o < r->n; o += INT_MAX / 2) {
      int64_t c = r->n - o < INT_MAX / 2 ? r->n - o : INT_MAX / 2;
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, tmp + o, (int)c, MPI_FLOAT, MPI_SUM, r->comm),
                "calibrating the all-reduce");
    }
    double t = dp_now() - t0;
    if (t < best) best = t;
  }
  free(tmp);
  // Every rank uses the same reference.
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_DOUBLE, MPI_MAX, r->comm), "calibrating the all-reduce");
  r->ref_s = best;
  LOG_INFO("all-reduce reference: %.1f MB in %.2f ms (%.2f GB/s), %d bucket(s)", (double)r->bytes / 1e6,
           best * 1e3, (double)r->bytes / best / 1e9, r->nbuckets);
}

double grad_reducer_hidden_fraction(const grad_reducer *r) {
  if (r->ref_s <= 0 || r->steps == 0) return -1;
  double h = 1.0 - r->wait_s / ((double)r->steps * r->ref_s);
  return h < 0 ? 0 : (h > 1 ? 1 : h);
}
