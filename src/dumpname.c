/* Dump file names: kafka_log_<topic>_<YYYY-MM-DD>.log[.gz] (the Solar-X daily dumps) and
 * <topic>.jsonl[.gz]. */
#include "solarx/dumpname.h"

#include <stdio.h>
#include <string.h>

#define DAILY_PREFIX "kafka_log_"

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD" naming a real day. */
static bool valid_date(const char *s)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= days[m - 1] + (m == 2 && is_leap(y));
}

static bool set_topic(struct dumpname *out, const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(out->topic))
        return false;
    memcpy(out->topic, s, len);
    out->topic[len] = '\0';
    return true;
}

/* kafka_log_<topic>_<YYYY-MM-DD>.log (".gz" already removed): name[0..len). */
static bool parse_daily(const char *name, size_t len, struct dumpname *out)
{
    size_t prefix = sizeof(DAILY_PREFIX) - 1;
    size_t tail = 1 + 10 + 4; /* "_YYYY-MM-DD.log" */
    if (len <= prefix + tail || memcmp(name, DAILY_PREFIX, prefix) != 0 ||
        !ends_with(name, len, ".log"))
        return false;
    const char *date = name + len - 4 - 10;
    if (date[-1] != '_' || !valid_date(date))
        return false;
    if (!set_topic(out, name + prefix, len - prefix - tail))
        return false;
    memcpy(out->date, date, 10);
    out->date[10] = '\0';
    out->form = DUMPNAME_DAILY_LOG;
    return true;
}

static bool parse_jsonl(const char *name, size_t len, struct dumpname *out)
{
    static const char *const suffixes[] = {".jsonl", ".json", ".txt"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (ends_with(name, len, suffixes[i]) && set_topic(out, name, len - strlen(suffixes[i]))) {
            out->form = DUMPNAME_JSONL;
            return true;
        }
    }
    return false;
}

bool dumpname_parse(const char *path, struct dumpname *out)
{
    memset(out, 0, sizeof(*out));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (ends_with(base, len, ".gz")) {
        out->gzip = true;
        len -= 3;
    }
    if (parse_daily(base, len, out) || parse_jsonl(base, len, out))
        return true;
    out->topic[0] = '\0';
    out->date[0] = '\0';
    out->form = DUMPNAME_UNKNOWN;
    return false;
}

bool dumpname_format_daily(char *buf, size_t size, const char *topic, const char *date)
{
    int n = snprintf(buf, size, DAILY_PREFIX "%s_%s.log.gz", topic, date);
    return n > 0 && (size_t)n < size;
}

int dumpname_compare(const void *a, const void *b)
{
    const struct dumpname_file *x = a, *y = b;
    int c = strcmp(x->name.date, y->name.date);
    if (c == 0)
        c = strcmp(x->name.topic, y->name.topic);
    if (c == 0)
        c = strcmp(x->path, y->path);
    return c;
}
