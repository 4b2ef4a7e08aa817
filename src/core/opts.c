// Validated option tables. See opts.h.
#include "core/opts.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/json.h"

int dp_opts_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 && n < (1L << 20) ? (int)n : 1;
}

const dp_opt *dp_opts_find(const dp_opts *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->opts[i].name, name)) return &t->opts[i];
  return NULL;
}

#define FAIL(...)                                                   \
  do {                                                              \
    fprintf(stderr, "%s: setting '%s': ", t->prog, o->name);        \
    fprintf(stderr, __VA_ARGS__);                                   \
    fputc('\n', stderr);                                            \
    return -1;                                                      \
  } while (0)

// Integer bounds of an option, after the CPU bound.
static void int_bounds(const dp_opt *o, int64_t *lo, int64_t *hi) {
  *lo = o->ilo;
  *hi = o->ihi;
  if (o->type == DP_OPT_INT) {
    if (*lo < INT32_MIN) *lo = INT32_MIN;
    if (*hi > INT32_MAX) *hi = INT32_MAX;
  }
  if ((o->flags & DP_OPT_CORES) && *hi > dp_opts_cpus()) *hi = dp_opts_cpus();
}

static int set_int(const dp_opts *t, const dp_opt *o, void *field, const char *v) {
  if (!*v) FAIL("needs an integer value");
  if (o->type == DP_OPT_U64) {
    // strtoull accepts "-1" and wraps it to UINT64_MAX; a seed of -1 is a mistake.
    if (v[0] == '-' || v[0] == '+' || v[0] == ' ' || v[0] == '\t')
      FAIL("'%s' is not a non-negative integer", v);
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end) FAIL("'%s' is not an integer", v);
    if (errno == ERANGE) FAIL("'%s' is out of range [0, %llu]", v, (unsigned long long)UINT64_MAX);
    *(uint64_t *)field = (uint64_t)x;
    return 0;
  }
  if (v[0] == ' ' || v[0] == '\t') FAIL("'%s' is not an integer", v);
  char *end = NULL;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (end == v || *end) FAIL("'%s' is not an integer", v);
  int64_t lo, hi;
  int_bounds(o, &lo, &hi);
  if (errno == ERANGE || x < lo || x > hi) {
    if ((o->flags & DP_OPT_CORES) && errno != ERANGE && x > hi)
      FAIL("%s is more than the %d CPUs online on this machine (allowed: [%lld, %d])", v, dp_opts_cpus(),
           (long long)lo, dp_opts_cpus());
    FAIL("%s is out of range: must be an integer in [%lld, %lld]", v, (long long)lo, (long long)hi);
  }
  if (o->type == DP_OPT_INT) *(int *)field = (int)x;
  else *(int64_t *)field = (int64_t)x;
  return 0;
}

static int set_float(const dp_opts *t, const dp_opt *o, void *field, const char *v) {
  if (!*v) FAIL("needs a number");
  if (v[0] == ' ' || v[0] == '\t') FAIL("'%s' is not a number", v);
  char *end = NULL;
  errno = 0;
  double x = strtod(v, &end);
  if (end == v || *end) FAIL("'%s' is not a number", v);
  // NaN compares false with every bound, so it would pass a plain range check
  // and disable whatever the setting guards: refuse it (and +-Inf) by name.
  if (!isfinite(x)) FAIL("'%s' is not a finite number", v);
  if (errno == ERANGE) FAIL("'%s' is out of the representable range", v);
  if (o->type == DP_OPT_FLOAT && fabs(x) > FLT_MAX) FAIL("'%s' does not fit a float", v);
  int lo_open = o->flags & DP_OPT_LO_OPEN, hi_open = o->flags & DP_OPT_HI_OPEN;
  if ((lo_open ? !(x > o->flo) : !(x >= o->flo)) || (hi_open ? !(x < o->fhi) : !(x <= o->fhi)))
    FAIL("%s is out of range: must be in %c%g, %g%c", v, lo_open ? '(' : '[', o->flo, o->fhi,
         hi_open ? ')' : ']');
  if (o->type == DP_OPT_FLOAT) *(float *)field = (float)x;
  else *(double *)field = x;
  return 0;
}

static int set_opt(const dp_opts *t, const dp_opt *o, void *dst, const char *value) {
  char *field = (char *)dst + o->off;
  switch (o->type) {
    case DP_OPT_STR: {
      size_t n = strlen(value);
      if (n >= o->size) FAIL("value is %zu characters, at most %zu fit", n, o->size - 1);
      memcpy(field, value, n + 1);
      return 0;
    }
    case DP_OPT_INT:
    case DP_OPT_I64:
    case DP_OPT_U64:
      return set_int(t, o, field, value);
    case DP_OPT_FLOAT:
    case DP_OPT_DOUBLE:
      return set_float(t, o, field, value);
    case DP_OPT_LIST:
      FAIL("is a list of values, given on the command line only");
  }
  FAIL("unknown option type");
}

int dp_opts_set(const dp_opts *t, void *dst, const char *key, const char *value) {
  const dp_opt *o = dp_opts_find(t, key);
  if (!o) {
    fprintf(stderr, "%s: unknown setting '%s' (see --help)\n", t->prog, key);
    return -1;
  }
  return set_opt(t, o, dst, value);
}

// ---- config files -------------------------------------------------------------
static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
  return s;
}

int dp_opts_read_text(const dp_opts *t, void *dst, const char *text, size_t len, const char *name) {
  // A NUL byte would silently end a line early (and the rest of it would be
  // read as a new setting by a line-based reader): refuse binary input.
  const char *nul = memchr(text, 0, len);
  if (nul) {
    int64_t line = 1;
    for (const char *p = text; p < nul; p++) line += *p == '\n';
    fprintf(stderr, "%s: %s:%lld: NUL byte in a config file (binary file?)\n", t->prog, name, (long long)line);
    return -1;
  }
  size_t pos = 0;
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) pos = 3;   // UTF-8 BOM
  char line[DP_OPTS_LINE_MAX + 2];
  int64_t lineno = 0;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
    lineno++;
    if (n > DP_OPTS_LINE_MAX) {
      fprintf(stderr, "%s: %s:%lld: line is longer than %d characters\n", t->prog, name, (long long)lineno,
              DP_OPTS_LINE_MAX);
      return -1;
    }
    memcpy(line, text + pos, n);
    line[n] = 0;
    pos += n + (nl ? 1 : 0);
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';' || *s == '[') continue;   // comments, [sections]
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "%s: %s:%lld: expected 'key = value'\n", t->prog, name, (long long)lineno);
      return -1;
    }
    *eq = 0;
    char *k = trim(s), *v = trim(eq + 1);
    char *hash = strstr(v, " #");   // "key = value  # comment"
    if (hash) *hash = 0, v = trim(v);
    size_t vn = strlen(v);
    if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') v[vn - 1] = 0, v++;
    for (char *p = k; *p; p++)
      if (*p == '_') *p = '-';
    const dp_opt *o = dp_opts_find(t, k);
    if (o && o->type == DP_OPT_LIST) o = NULL;
    if (!o || (t->config_flag && !strcmp(k, "config"))) {
      fprintf(stderr, "%s: %s:%lld: unknown setting '%s' (see --help)\n", t->prog, name, (long long)lineno, k);
      return -1;
    }
    if (set_opt(t, o, dst, v)) {
      fprintf(stderr, "%s: (in %s line %lld)\n", t->prog, name, (long long)lineno);
      return -1;
    }
  }
  return 0;
}

int dp_opts_read_file(const dp_opts *t, void *dst, const char *path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on the open
  // descriptor then decides (no race between a stat and the open).
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "%s: setting 'config': cannot open '%s': %s\n", t->prog, path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fprintf(stderr, "%s: setting 'config': cannot stat '%s': %s\n", t->prog, path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    fprintf(stderr, "%s: setting 'config': '%s' is %s, not a regular file\n", t->prog, path,
            S_ISDIR(st.st_mode) ? "a directory" : S_ISCHR(st.st_mode) ? "a character device"
            : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISBLK(st.st_mode) ? "a block device" : "special");
    close(fd);
    return -1;
  }
  if (st.st_size > DP_OPTS_FILE_MAX) {
    fprintf(stderr, "%s: setting 'config': '%s' is %lld bytes, more than a config file's limit of %d\n",
            t->prog, path, (long long)st.st_size, DP_OPTS_FILE_MAX);
    close(fd);
    return -1;
  }
  // Read up to the limit + 1 so a file that grew after fstat is still caught.
  char *buf = dp_malloc(DP_OPTS_FILE_MAX + 1, "config file");
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, DP_OPTS_FILE_MAX + 1 - n);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) {
      fprintf(stderr, "%s: setting 'config': reading '%s': %s\n", t->prog, path, strerror(errno));
      free(buf);
      close(fd);
      return -1;
    }
    if (r == 0 || (n += (size_t)r) > DP_OPTS_FILE_MAX) break;
  }
  close(fd);
  if (n > DP_OPTS_FILE_MAX) {
    fprintf(stderr, "%s: setting 'config': '%s' is larger than %d bytes\n", t->prog, path, DP_OPTS_FILE_MAX);
    free(buf);
    return -1;
  }
  int rc = dp_opts_read_text(t, dst, buf, n, path);
  free(buf);
  return rc;
}

// ---- command line -------------------------------------------------------------
static int is_flag(const char *a) { return a[0] == '-' && a[1] == '-' && a[2]; }

int dp_opts_parse(const dp_opts *t, void *dst, int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      dp_opts_usage(t, NULL, stdout);
      return 1;
    }
  // Pass 1: the config file, so command-line flags override it.
  if (t->config_flag)
    for (int i = 1; i < argc; i++) {
      if (strncmp(argv[i], "--config", 8) || (argv[i][8] && argv[i][8] != '=')) continue;
      const char *v = argv[i][8] == '=' ? argv[i] + 9 : i + 1 < argc ? argv[++i] : NULL;
      if (!v || !*v) {
        fprintf(stderr, "%s: setting 'config' needs a file\n", t->prog);
        return -1;
      }
      if (dp_opts_read_file(t, dst, v)) return -1;
    }
  char *given = dp_calloc((size_t)t->n + 1, 1, "option flags");
  int next_pos = 0, rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i];
    if (!is_flag(a)) {
      // Positional: the next DP_OPT_POS option not given yet.
      while (next_pos < t->n && (!(t->opts[next_pos].flags & DP_OPT_POS) || given[next_pos])) next_pos++;
      if (next_pos >= t->n) {
        fprintf(stderr, "%s: unexpected argument '%s' (flags are --name value; see --help)\n", t->prog, a);
        rc = -1;
        break;
      }
      const dp_opt *o = &t->opts[next_pos];
      rc = set_opt(t, o, dst, a);
      given[next_pos] = 1;
      continue;
    }
    char key[128];
    const char *val = NULL, *eq = strchr(a, '=');
    size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (kl >= sizeof key) {
      fprintf(stderr, "%s: unknown option '%.60s...'\n", t->prog, a);
      rc = -1;
      break;
    }
    memcpy(key, a + 2, kl);
    key[kl] = 0;
    if (eq) val = eq + 1;
    if (t->config_flag && !strcmp(key, "config")) {
      if (!eq) i++;
      continue;
    }
    const dp_opt *o = dp_opts_find(t, key);
    if (!o) {
      fprintf(stderr, "%s: unknown option '--%s' (see --help)\n", t->prog, key);
      rc = -1;
      break;
    }
    given[o - t->opts] = 1;
    if (o->type == DP_OPT_LIST) {
      const char **list = dp_calloc((size_t)argc + 1, sizeof(char *), "option list");
      int cnt = 0;
      if (val && *val) list[cnt++] = val;
      while (i + 1 < argc && !is_flag(argv[i + 1])) list[cnt++] = argv[++i];
      const char ***slot = (const char ***)((char *)dst + o->off);
      free((void *)*slot);   // a repeated list flag replaces the earlier one
      *slot = list;
      *(int *)((char *)dst + o->size) = cnt;
      if (cnt == 0) {
        fprintf(stderr, "%s: setting '%s' needs at least one value\n", t->prog, o->name);
        rc = -1;
      }
      continue;
    }
    if (!val && (o->flags & DP_OPT_BARE) && (i + 1 >= argc || is_flag(argv[i + 1]))) val = "1";
    if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: setting '%s' needs a value\n", t->prog, o->name);
        rc = -1;
        break;
      }
      val = argv[++i];
    }
    rc = set_opt(t, o, dst, val);
  }
  for (int k = 0; k < t->n && !rc; k++)
    if ((t->opts[k].flags & DP_OPT_REQUIRED) && !given[k]) {
      fprintf(stderr, "%s: setting '%s' is required (--%s; see --help)\n", t->prog, t->opts[k].name,
              t->opts[k].name);
      rc = -1;
    }
  free(given);
  return rc ? -1 : 0;
}

// ---- output -------------------------------------------------------------------
char *dp_opts_format(const dp_opt *o, const void *src, char *b, size_t n) {
  const char *base = (const char *)src + o->off;
  switch (o->type) {
    case DP_OPT_STR: snprintf(b, n, "%s", base); break;
    case DP_OPT_I64: snprintf(b, n, "%lld", (long long)*(const int64_t *)base); break;
    case DP_OPT_U64: snprintf(b, n, "%llu", (unsigned long long)*(const uint64_t *)base); break;
    case DP_OPT_INT: snprintf(b, n, "%d", *(const int *)base); break;
    case DP_OPT_FLOAT: snprintf(b, n, "%.9g", (double)*(const float *)base); break;
    case DP_OPT_DOUBLE: snprintf(b, n, "%.17g", *(const double *)base); break;
    case DP_OPT_LIST: {
      int cnt = *(const int *)((const char *)src + o->size);
      snprintf(b, n, "%d value(s)", cnt);
      break;
    }
  }
  return b;
}

static void range_text(const dp_opt *o, char *b, size_t n) {
  b[0] = 0;
  if (o->type == DP_OPT_INT || o->type == DP_OPT_I64) {
    int64_t lo, hi;
    int_bounds(o, &lo, &hi);
    if (o->flags & DP_OPT_BARE) snprintf(b, n, "0/1");
    else if (o->flags & DP_OPT_CORES) snprintf(b, n, "%lld..CPUs", (long long)lo);
    else snprintf(b, n, "%lld..%lld", (long long)lo, (long long)hi);
  } else if (o->type == DP_OPT_FLOAT || o->type == DP_OPT_DOUBLE) {
    snprintf(b, n, "%c%g, %g%c", o->flags & DP_OPT_LO_OPEN ? '(' : '[', o->flo, o->fhi,
             o->flags & DP_OPT_HI_OPEN ? ')' : ']');
  }
}

void dp_opts_usage(const dp_opts *t, const void *defaults, FILE *f) {
  if (t->usage) fprintf(f, "%s", t->usage);
  fprintf(f, "\noptions (default in brackets, range in braces):\n");
  if (t->config_flag) fprintf(f, "  --%-22s %s\n", "config FILE", "read `key = value` settings from FILE first");
  for (int i = 0; i < t->n; i++) {
    const dp_opt *o = &t->opts[i];
    char v[96] = "", r[96];
    if (defaults && o->type != DP_OPT_LIST) dp_opts_format(o, defaults, v, sizeof v);
    range_text(o, r, sizeof r);
    fprintf(f, "  --%-22s %s%s%s%s%s%s%s\n", o->name, o->help, defaults && o->type != DP_OPT_LIST ? " [" : "",
            defaults && o->type != DP_OPT_LIST ? v : "", defaults && o->type != DP_OPT_LIST ? "]" : "",
            r[0] ? " {" : "", r, r[0] ? "}" : "");
  }
}

void dp_opts_write_ini(const dp_opts *t, const void *src, FILE *f) {
  for (int i = 0; i < t->n; i++) {
    const dp_opt *o = &t->opts[i];
    if (o->type == DP_OPT_LIST || (o->flags & DP_OPT_HIDDEN)) continue;
    char v[2048];
    fprintf(f, "%s = %s\n", o->name, dp_opts_format(o, src, v, sizeof v));
  }
}

void dp_opts_write_json(const dp_opts *t, const void *src, void *dp_json_writer) {
  dp_json *j = dp_json_writer;
  for (int i = 0; i < t->n; i++) {
    const dp_opt *o = &t->opts[i];
    const char *base = (const char *)src + o->off;
    if (o->flags & DP_OPT_HIDDEN) continue;
    switch (o->type) {
      case DP_OPT_STR: dp_json_kv_string(j, o->name, base); break;
      case DP_OPT_I64: dp_json_kv_int(j, o->name, *(const int64_t *)base); break;
      case DP_OPT_U64: {
        // JSON numbers above 2^53 lose digits in most readers: write the
        // exact decimal as a string then.
        uint64_t u = *(const uint64_t *)base;
        if (u <= ((uint64_t)1 << 53)) dp_json_kv_int(j, o->name, (int64_t)u);
        else {
          char b[32];
          snprintf(b, sizeof b, "%llu", (unsigned long long)u);
          dp_json_kv_string(j, o->name, b);
        }
        break;
      }
      case DP_OPT_INT: dp_json_kv_int(j, o->name, *(const int *)base); break;
      case DP_OPT_FLOAT: {   // shortest decimal that round-trips the float, not its double expansion
        char b[32];
        snprintf(b, sizeof b, "%.7g", (double)*(const float *)base);
        dp_json_kv_double(j, o->name, strtod(b, NULL));
        break;
      }
      case DP_OPT_DOUBLE: dp_json_kv_double(j, o->name, *(const double *)base); break;
      case DP_OPT_LIST: {
        const char *const *list = *(const char *const *const *)base;
        int cnt = *(const int *)((const char *)src + o->size);
        dp_json_key(j, o->name);
        dp_json_begin_array(j);
        for (int k = 0; k < cnt && list; k++) dp_json_string(j, list[k]);
        dp_json_end_array(j);
        break;
      }
    }
  }
}
