// core/membudget: sizes with units, and the enforced budget: an allocation
// that would pass it is a fatal error naming the budget and the planned
// total (checked in a child process, whose stderr and exit code we read).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/check.h"
#include "core/membudget.h"
#include "testutil.h"

static void sizes(void) {
  struct { const char *s; int64_t want; } c[] = {
      {"24GiB", 24LL << 30}, {"24G", 24LL << 30}, {"1.5GB", 1500000000LL}, {"512MiB", 512LL << 20},
      {"300M", 300LL << 20}, {"4096", 4096},      {"64 KiB", 64 << 10},    {"2TiB", 2LL << 40},
      {"", -1},              {"abc", -1},         {"-1GiB", -1},          {"3parsecs", -1},
      {"nan", -1},           {"1e30", -1}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    TU_CHECK(dp_size_parse(c[i].s) == c[i].want, "'%s' -> %lld, want %lld", c[i].s, (long long)dp_size_parse(c[i].s),
             (long long)c[i].want);
}

// Child: enforce 64 MiB, allocate and touch 40 MiB (fits), then ask for 40 MiB more.
static void child(void) {
  dp_budget_enforce(64LL << 20, 50LL << 20, "test budget", 0);
  char *a = dp_malloc(40 << 20, "first block");
  memset(a, 1, 40 << 20);
  dp_budget_check("a step", 0);   // the peak so far fits
  char *b = dp_malloc(40 << 20, "second block");   // must die here
  memset(b, 1, 40 << 20);
  printf("NOT STOPPED\n");
  exit(0);
}

int main(void) {
  sizes();
  int fd[2];
  TU_CHECK(pipe(fd) == 0, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    dup2(fd[1], 1);
    close(fd[0]);
    child();
  }
  close(fd[1]);
  char buf[4096] = "";
  size_t n = 0;
  ssize_t r;
  while ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
  buf[n] = 0;
  int st = 0;
  waitpid(pid, &st, 0);
  printf("child said: %s", buf);
  TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "the allocation past the budget did not stop the process");
  TU_CHECK(strstr(buf, "second block") && strstr(buf, "memory budget 64.0 MiB (test budget)") &&
               strstr(buf, "planned total 50.0 MiB"),
           "the error must name the allocation, the budget and the planned total");
  TU_CHECK(!strstr(buf, "NOT STOPPED"), "the child went on past the budget");
  return tu_finish("test_membudget");
}
