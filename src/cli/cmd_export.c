// dptrain export --weights F --onnx model.onnx [--opset N] [--no-check]
// The exporter is Python (python/dptrain/export.py: the torch twin of the
// model, torch.onnx, an ONNX Runtime check); this command finds the package and
// a Python that has torch/onnx, and replaces itself with
//   PYTHON -m dptrain.export ARGS...   (PYTHONPATH=<root>/python:$PYTHONPATH)
// Python: $DPTRAIN_PYTHON, else <root>/.venv/bin/python (the venv .ci/venv.sh
// makes), else python3 on PATH. <root>: the directory above the dptrain
// binary (the source tree when it is built in build/), <that>/share/dptrain
// (an installed tree), then the source tree it was built from.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

#ifndef DP_SOURCE_DIR
#define DP_SOURCE_DIR "."
#endif

static const char *hint = "make the environment with .ci/venv.sh (python/requirements.txt), or set DPTRAIN_PYTHON";

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain export --weights FILE --onnx OUT.onnx [--opset N] [--no-check]\n"
          "Exports FILE (model.safetensors from `dptrain train`) to ONNX: input 'input' float32\n"
          "(batch, C, S, S) NCHW, output 'logits' (batch, classes), dynamic batch axis; the\n"
          "preprocessing and class names are in the model's metadata_props. Unless --no-check,\n"
          "ONNX Runtime's logits are checked against the torch twin (rel. error <= 1e-4).\n"
          "Runs python -m dptrain.export with $DPTRAIN_PYTHON, <root>/.venv/bin/python or python3.\n");
}

static int is_file(const char *p) { return access(p, R_OK) == 0; }
static int is_exec(const char *p) { return access(p, X_OK) == 0; }

// out = a + b; 0 when it does not fit (a path that long is never a match).
static int join(char *out, size_t n, const char *a, const char *b) {
  int w = snprintf(out, n, "%s%s", a, b);
  return w >= 0 && (size_t)w < n;
}

// Candidate roots: the binary's parent directory (a source tree built in
// build/), the installed share/dptrain (cmake --install puts python/ there),
// then the source tree the binary was built from.
enum { NROOTS = 3 };
static int roots(char out[NROOTS][PATH_MAX]) {
  int n = 0;
  char exe[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (l > 0) {
    exe[l] = 0;
    char *s = strrchr(exe, '/');
    if (s) {
      *s = 0;
      if (join(out[n], PATH_MAX, exe, "/..")) n++;
      if (join(out[n], PATH_MAX, exe, "/../share/dptrain")) n++;
    }
  }
  if (join(out[n], PATH_MAX, DP_SOURCE_DIR, "")) n++;
  return n;
}

int cmd_export(int argc, char **argv) {
  int have_weights = 0, have_onnx = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--weights")) have_weights = i + 1 < argc;
    if (!strcmp(argv[i], "--onnx")) have_onnx = i + 1 < argc;
  }
  if (!have_weights || !have_onnx) {
    fprintf(stderr, "dptrain export: bad configuration: --weights and --onnx are required\n");
    usage(stderr);
    return 2;
  }
  char r[NROOTS][PATH_MAX], pkg[PATH_MAX] = "", py[PATH_MAX] = "", probe[PATH_MAX];
  int nr = roots(r);
  for (int k = 0; k < nr && !pkg[0]; k++) {
    if (join(probe, sizeof probe, r[k], "/python/dptrain/export.py") && is_file(probe))
      join(pkg, sizeof pkg, r[k], "/python");
  }
  if (!pkg[0]) {
    fprintf(stderr, "dptrain export: the Python package python/dptrain is in none of:");
    for (int k = 0; k < nr; k++) fprintf(stderr, " %s", r[k]);
    fprintf(stderr, "\n");
    return 2;
  }
  const char *env = getenv("DPTRAIN_PYTHON");
  if (env && *env) {
    if (!is_exec(env)) {
      fprintf(stderr, "dptrain export: DPTRAIN_PYTHON=%s is not an executable: %s\n", env, hint);
      return 2;
    }
    if (!join(py, sizeof py, env, "")) {
      fprintf(stderr, "dptrain export: DPTRAIN_PYTHON is longer than %d bytes\n", PATH_MAX - 1);
      return 2;
    }
  }
  for (int k = 0; k < nr && !py[0]; k++) {
    if (join(probe, sizeof probe, r[k], "/.venv/bin/python") && is_exec(probe))
      join(py, sizeof py, probe, "");
  }
  const char *oldpp = getenv("PYTHONPATH");
  char *pp = malloc(strlen(pkg) + (oldpp ? strlen(oldpp) : 0) + 2);
  if (!pp) return 2;
  sprintf(pp, "%s%s%s", pkg, oldpp && *oldpp ? ":" : "", oldpp && *oldpp ? oldpp : "");
  if (setenv("PYTHONPATH", pp, 1)) {
    fprintf(stderr, "dptrain export: setenv PYTHONPATH: %s\n", strerror(errno));
    return 2;
  }
  free(pp);
  char **av = calloc((size_t)argc + 3, sizeof *av);
  if (!av) return 2;
  av[0] = py[0] ? py : "python3";
  av[1] = "-m";
  av[2] = "dptrain.export";
  for (int i = 1; i < argc; i++) av[2 + i] = argv[i];
  fflush(stdout);
  if (py[0]) execv(py, av);
  else execvp("python3", av);
  fprintf(stderr, "dptrain export: cannot run %s: %s: %s\n", av[0], strerror(errno), hint);
  free(av);
  return 2;
}
