// Validated option tables: one declaration per setting drives the command
// line, `key = value` config files, --help, and the saved configuration.
// Every subcommand (train, eval, study, info, the bench programs) declares its
// options in a table of dp_opt and parses with dp_opts_parse, so each gets the
// same checks:
//   * integers are parsed on their real type (int, int64, uint64) with
//     overflow detection and range-checked: "--channels 4294967299" is an
//     error, never a silent truncation to 3;
//   * floats must be finite (NaN and +-Inf are refused) and in range; a float
//     option also refuses values beyond FLT_MAX;
//   * DP_OPT_CORES options (thread counts) are bounded by the CPUs online;
//   * config files must be regular files (a directory or /dev/zero is
//     refused before reading), at most DP_OPTS_FILE_MAX bytes, with no NUL
//     byte and no line longer than DP_OPTS_LINE_MAX characters.
// Errors print one line "<prog>: setting 'name': reason" on stderr and make
// the parser return -1; the caller exits with code 2 (bad input or config).
#ifndef DP_CORE_OPTS_H
#define DP_CORE_OPTS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  DP_OPT_STR,     // char buffer of `size` bytes (value must fit, no truncation)
  DP_OPT_INT,     // int
  DP_OPT_I64,     // int64_t
  DP_OPT_U64,     // uint64_t (no sign accepted)
  DP_OPT_FLOAT,   // float
  DP_OPT_DOUBLE,  // double
  DP_OPT_LIST,    // const char ** of values up to the next "--flag" (command line only);
                  // `size` holds the offset of its int count
} dp_opt_type;

enum {
  DP_OPT_BARE = 1,      // 0/1 setting that may be given without a value ("--small-stem")
  DP_OPT_POS = 2,       // also accepted as a positional argument, in table order
  DP_OPT_CORES = 4,     // upper bound: the CPUs online (sysconf)
  DP_OPT_LO_OPEN = 8,   // float range excludes its lower bound
  DP_OPT_HI_OPEN = 16,  // float range excludes its upper bound
  DP_OPT_REQUIRED = 32, // must be given (checked by dp_opts_parse)
  DP_OPT_HIDDEN = 64,   // not written to the saved config (e.g. "config" itself)
};

typedef struct {
  const char *name;      // long flag without "--", also the config-file key
  dp_opt_type type;
  size_t off;            // offset of the field in the settings struct
  size_t size;           // STR: buffer size; LIST: offset of the int count
  int64_t ilo, ihi;      // integer range (inclusive); U64 uses [0, UINT64_MAX]
  double flo, fhi;       // float range (see DP_OPT_LO_OPEN / HI_OPEN)
  int flags;
  const char *help;
} dp_opt;

typedef struct {
  const char *prog;      // "dptrain", "dptrain eval", ... (start of every message)
  const dp_opt *opts;
  int n;
  const char *usage;     // usage lines printed before the option list (may be NULL)
  int config_flag;       // 1: "--config FILE" reads a config file first
} dp_opts;

// Declaration helpers (st = the settings struct type).
#define DP_OPT_S(st, nm, f, fl, h) {nm, DP_OPT_STR, offsetof(st, f), sizeof(((st *)0)->f), 0, 0, 0, 0, fl, h}
#define DP_OPT_I(st, nm, ty, f, lo, hi, fl, h) {nm, ty, offsetof(st, f), 0, lo, hi, 0, 0, fl, h}
#define DP_OPT_F(st, nm, ty, f, lo, hi, fl, h) {nm, ty, offsetof(st, f), 0, 0, 0, lo, hi, fl, h}
#define DP_OPT_L(st, nm, f, cnt, fl, h) {nm, DP_OPT_LIST, offsetof(st, f), offsetof(st, cnt), 0, 0, 0, 0, fl, h}

#define DP_OPTS_LINE_MAX 4095
#define DP_OPTS_FILE_MAX (1 << 20)

// CPUs online on this machine (>= 1): the bound of DP_OPT_CORES options.
int dp_opts_cpus(void);

// Sets one option by name from text. Returns 0, or -1 after printing why.
int dp_opts_set(const dp_opts *t, void *dst, const char *key, const char *value);
// Parses argv[1..argc) (argv[0] is the command name) into dst, which holds
// the defaults. With config_flag, "--config FILE" is read first so flags win.
// Returns 0, 1 when --help/-h was printed (to stdout), -1 on error (printed).
int dp_opts_parse(const dp_opts *t, void *dst, int argc, char **argv);
// `key = value` lines from a file / from memory (name is used in messages).
// Comments start with '#' or ';' (also after " #" on a line), "[section]"
// lines are ignored, '_' in keys reads as '-', values may be "quoted".
int dp_opts_read_file(const dp_opts *t, void *dst, const char *path);
int dp_opts_read_text(const dp_opts *t, void *dst, const char *text, size_t len, const char *name);
// The option list with the values in defaults (help text).
void dp_opts_usage(const dp_opts *t, const void *defaults, FILE *f);
// Writes "name = value" lines (reusable as a config file).
void dp_opts_write_ini(const dp_opts *t, const void *src, FILE *f);
// Writes "name": value pairs into an open JSON object (a dp_json *).
void dp_opts_write_json(const dp_opts *t, const void *src, void *dp_json_writer);
// Formats one option's value (for messages); returns buf.
char *dp_opts_format(const dp_opt *o, const void *src, char *buf, size_t n);
const dp_opt *dp_opts_find(const dp_opts *t, const char *name);
#endif
