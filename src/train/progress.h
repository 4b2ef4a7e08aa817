// Rank 0's progress line: epoch, step, loss, img/s, ETA. On a terminal it
// rewrites itself in place; otherwise (Slurm logs, pipes) it prints a plain
// line every `every` steps or 30 s, whichever comes first.
#ifndef DP_TRAIN_PROGRESS_H
#define DP_TRAIN_PROGRESS_H
#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *f;
  int tty;
  int64_t total_steps;
  int every;
  double start, last_print;
  int dirty;                // a TTY line is on screen without a newline
} progress;

void progress_init(progress *p, FILE *f, int64_t total_steps, int every);
void progress_update(progress *p, int64_t epoch, int64_t step, double loss, double img_s, double lr);
// Ends a rewritten TTY line before other output.
void progress_break(progress *p);
#endif
