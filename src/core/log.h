// Logging to stderr with level, elapsed time and rank prefix.
#ifndef DP_CORE_LOG_H
#define DP_CORE_LOG_H
typedef enum { DP_LOG_DEBUG = 0, DP_LOG_INFO, DP_LOG_WARN, DP_LOG_ERROR } dp_log_level;
void dp_log_set_level(dp_log_level lvl);
// Only rank 0 prints INFO unless DPTRAIN_LOG_ALL=1; WARN/ERROR print everywhere.
void dp_log(dp_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_DEBUG(...) dp_log(DP_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) dp_log(DP_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) dp_log(DP_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) dp_log(DP_LOG_ERROR, __VA_ARGS__)
#endif
