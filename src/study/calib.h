// Calibration: the model predicts each measured CPU run from the *other*
// runs (leave-one-out: MFU from another 1-rank run of the family, the
// nearest image size; hidden communication and step-time spread from other
// runs), so a 1-rank run tests the transfer across image sizes and a 2-rank
// run the communication and straggler terms. The report shows the table and
// whether each prediction is within the tolerance (+-15 %).
#ifndef DP_STUDY_CALIB_H
#define DP_STUDY_CALIB_H
#include "study/decide.h"

#define CAL_TOLERANCE 0.15

typedef struct {
  const sr_run *run;
  const sr_run *mfu_from;   // NULL: no other run to predict from
  pv_num mfu, hidden, cv;
  sm_input in;
  sm_result res;
  double predicted, error;  // error = predicted / measured - 1
  int within;
} cal_row;

// Rows for every training run on a CPU; returns the count (rows malloc'd).
int cal_build(dc_ctx *x, cal_row **rows);
#endif
