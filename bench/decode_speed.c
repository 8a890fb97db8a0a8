/* decode_speed: how long decode_message takes per message, on messages of one topic read from a
 * file (one per line, as `solarx-sim --output-dir` writes them), decoded ROUNDS times over.
 * Prints "messages=N readings=R ns_per_message=X". Measures the decoder alone, not the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "solarx/clock.h"
#include "solarx/decode.h"

static const char usage_text[] =
    "usage: decode_speed home|solar|battery FILE [ROUNDS [ZONE]]\n"
    "Decodes every line of FILE as a message of that topic ROUNDS times (default 5), naive\n"
    "timestamps read in ZONE (default UTC), and prints\n"
    "\"messages=N readings=R ns_per_message=X\" (the best round).\n";

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs(usage_text, stderr);
        return 64;
    }
    enum reading_kind kind = strcmp(argv[1], "home") == 0    ? READING_HOME
                             : strcmp(argv[1], "solar") == 0 ? READING_SOLAR
                                                             : READING_BATTERY;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    FILE *in = fopen(argv[2], "r");
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    char **lines = NULL;
    size_t *lens = NULL, count = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    while ((n = getline(&line, &line_cap, in)) > 0) {
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            lines = realloc(lines, cap * sizeof(*lines));
            lens = realloc(lens, cap * sizeof(*lens));
            if (!lines || !lens)
                return 1;
        }
        lines[count] = strndup(line, (size_t)n);
        lens[count++] = (size_t)n;
    }
    free(line);
    fclose(in);
    char err[256];
    struct clock_zone *zone = clock_zone_new(argc > 4 ? argv[4] : "UTC", err, sizeof(err));
    if (!zone) {
        fprintf(stderr, "decode_speed: %s\n", err);
        return 1;
    }
    struct decode_config cfg = {.default_home_id = 1, .default_panel_id = 1, .zone = zone};
    double best = 0;
    size_t readings = 0;
    for (int r = 0; r < rounds; r++) {
        readings = 0;
        double t0 = bench_now();
        for (size_t i = 0; i < count; i++) {
            struct reading out[DECODE_MAX_READINGS];
            size_t got = 0;
            char reason[DECODE_REASON_SIZE];
            if (decode_message(&cfg, kind, lines[i], lens[i], out, &got, reason, sizeof(reason)) ==
                DECODE_OK)
                readings += got;
        }
        double s = bench_now() - t0;
        if (r == 0 || s < best)
            best = s;
    }
    printf("messages=%zu readings=%zu ns_per_message=%.0f\n", count, readings,
           count ? best * 1e9 / (double)count : 0.0);
    for (size_t i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    clock_zone_destroy(zone);
    return 0;
}
