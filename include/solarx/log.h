/* logfmt lines on stderr: "ts=… level=info event=flush rows=123 …". */
#ifndef SOLARX_LOG_H
#define SOLARX_LOG_H

#include <stddef.h>

#include "solarx/config.h"

/* Lines below this level are dropped. Default info. */
void log_set_level(enum config_log_level level);
enum config_log_level log_get_level(void);

/* Writes one line: ts and level, then fmt (logfmt pairs written by the caller). */
void log_write(enum config_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(CONFIG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(CONFIG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(CONFIG_LOG_DEBUG, __VA_ARGS__)

/* Quotes s as a logfmt value (escapes quotes, backslashes and newlines) into buf; returns buf. */
char *log_quote(const char *s, char *buf, size_t size);

#endif
