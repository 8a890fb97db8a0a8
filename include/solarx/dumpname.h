/* Names of topic dump files: which topic a file holds, which day, whether it is gzip'd, and the
 * order in which a set of dumps is ingested. Pure: no I/O. */
#ifndef SOLARX_DUMPNAME_H
#define SOLARX_DUMPNAME_H

#include <stdbool.h>
#include <stddef.h>

#define DUMPNAME_TOPIC_SIZE 250
#define DUMPNAME_DATE_SIZE 11 /* "YYYY-MM-DD" and a NUL */

enum dumpname_form {
    DUMPNAME_UNKNOWN,   /* the name says nothing about a topic */
    DUMPNAME_DAILY_LOG, /* kafka_log_<topic>_<YYYY-MM-DD>.log[.gz], as Solar-X writes them */
    DUMPNAME_JSONL,     /* <topic>.jsonl[.gz] (also .json, .txt) */
};

struct dumpname {
    enum dumpname_form form;
    char topic[DUMPNAME_TOPIC_SIZE]; /* "" for DUMPNAME_UNKNOWN */
    char date[DUMPNAME_DATE_SIZE];   /* "" unless DUMPNAME_DAILY_LOG */
    bool gzip;                       /* the name ends in .gz */
};

/* Reads the base name of path (directories are ignored). Always fills *out; returns true when
 * the name has one of the known forms (out->form != DUMPNAME_UNKNOWN). A daily log's date must
 * be a real calendar day; its topic is everything between "kafka_log_" and "_<date>", so topics
 * with underscores (battery_data) work. */
bool dumpname_parse(const char *path, struct dumpname *out);

/* The archive name of a topic's day: "kafka_log_<topic>_<date>.log.gz" into buf. Returns false
 * when it does not fit. */
bool dumpname_format_daily(char *buf, size_t size, const char *topic, const char *date);

/* qsort order of dump files: by date (undated files first), then topic, then path. */
struct dumpname_file {
    const char *path;
    struct dumpname name;
};
int dumpname_compare(const void *a, const void *b);

#endif
