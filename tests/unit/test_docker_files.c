/* Checks docker/: compose.yaml is valid YAML with the promised services and healthchecks, and
 * every repository path or binary that docker/Dockerfile and compose.yaml name really exists. */
#include <criterion/criterion.h>
#include <yaml.h>

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "solarx/config.h"

#define DOCKER_DIR SOLARX_SOURCE_DIR "/docker"
#define MAX_PROBLEMS 64
#define MAX_NAMES 32

/* Everything a check found wrong, one line each. */
struct problems {
    int count;
    char line[MAX_PROBLEMS][512];
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...)
{
    va_list ap;
    if (p->count < MAX_PROBLEMS) {
        va_start(ap, fmt);
        vsnprintf(p->line[p->count], sizeof(p->line[0]), fmt, ap);
        va_end(ap);
    }
    p->count++;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* OUT = A/B; false (and OUT truncated) when it does not fit. */
static bool join_path(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    return n >= 0 && (size_t)n < size;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (out && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(f);
    if (!out)
        return NULL;
    fclose(out);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* --- YAML ------------------------------------------------------------------------------------ */

static bool load_yaml(const char *path, yaml_document_t *doc, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return false;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    bool ok = yaml_parser_load(&parser, doc) != 0;
    if (!ok)
        snprintf(err, err_size, "%s:%zu:%zu: %s %s", path, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "error",
                 parser.context ? parser.context : "");
    else if (!yaml_document_get_root_node(doc)) {
        snprintf(err, err_size, "%s: empty document", path);
        yaml_document_delete(doc);
        ok = false;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return ok;
}

static const char *scalar(yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

/* The value of KEY in a mapping node (following "<<" merge keys), or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    yaml_node_t *merged = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(yaml_document_get_node(doc, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(doc, p->value);
        if (k && strcmp(k, "<<") == 0)
            merged = yaml_document_get_node(doc, p->value);
    }
    return merged ? map_get(doc, merged, key) : NULL;
}

static size_t seq_len(yaml_node_t *seq)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *seq_at(yaml_document_t *doc, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
}

static size_t map_len(yaml_node_t *map)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static const char *map_key_at(yaml_document_t *doc, yaml_node_t *map, size_t i)
{
    return scalar(yaml_document_get_node(doc, map->data.mapping.pairs.start[i].key));
}

static yaml_node_t *map_value_at(yaml_document_t *doc, yaml_node_t *map, size_t i)
{
    return yaml_document_get_node(doc, map->data.mapping.pairs.start[i].value);
}

/* --- compose checks -------------------------------------------------------------------------- */

/* Services the compose file promises, and which of them must say how they are healthy. */
static const char *const required_services[] = {
    "kafka", "postgres", "migrate", "solarx-stream", "simulator", "prometheus", "grafana"};
static const char *const healthchecked_services[] = {"kafka", "postgres", "solarx-stream",
                                                     "prometheus", "grafana"};

static bool has_healthcheck(yaml_document_t *doc, yaml_node_t *service)
{
    yaml_node_t *hc = map_get(doc, service, "healthcheck");
    yaml_node_t *test = map_get(doc, hc, "test");
    const char *disable = scalar(map_get(doc, hc, "disable"));
    if (!test || (disable && strcmp(disable, "true") == 0))
        return false;
    return scalar(test) ? scalar(test)[0] != '\0' : seq_len(test) >= 2;
}

/* Dependencies: targets exist; service_healthy targets have a healthcheck. */
static void check_depends_on(yaml_document_t *doc, yaml_node_t *services, const char *name,
                             yaml_node_t *service, struct problems *p)
{
    yaml_node_t *deps = map_get(doc, service, "depends_on");
    if (deps && deps->type == YAML_SEQUENCE_NODE) {
        for (size_t i = 0; i < seq_len(deps); i++) {
            const char *target = scalar(seq_at(doc, deps, i));
            if (!target || !map_get(doc, services, target))
                problem(p, "compose: %s depends on unknown service %s", name,
                        target ? target : "?");
        }
        return;
    }
    for (size_t i = 0; i < map_len(deps); i++) {
        const char *target = map_key_at(doc, deps, i);
        yaml_node_t *target_node = target ? map_get(doc, services, target) : NULL;
        const char *cond = scalar(map_get(doc, map_value_at(doc, deps, i), "condition"));
        if (!target_node) {
            problem(p, "compose: %s depends on unknown service %s", name, target ? target : "?");
            continue;
        }
        if (cond && strcmp(cond, "service_healthy") == 0 && !has_healthcheck(doc, target_node))
            problem(p, "compose: %s waits for %s to be healthy, but %s has no healthcheck", name,
                    target, target);
        if (cond && strcmp(cond, "service_healthy") != 0 && strcmp(cond, "service_started") != 0 &&
            strcmp(cond, "service_completed_successfully") != 0)
            problem(p, "compose: %s depends on %s with unknown condition %s", name, target, cond);
    }
}

static const char *dependency_condition(yaml_document_t *doc, yaml_node_t *service,
                                        const char *target)
{
    return scalar(
        map_get(doc, map_get(doc, map_get(doc, service, "depends_on"), target), "condition"));
}

static void check_compose_services(yaml_document_t *doc, struct problems *p)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    yaml_node_t *services = map_get(doc, root, "services");
    if (!services || services->type != YAML_MAPPING_NODE) {
        problem(p, "compose: no services mapping");
        return;
    }
    for (size_t i = 0; i < sizeof(required_services) / sizeof(required_services[0]); i++) {
        yaml_node_t *s = map_get(doc, services, required_services[i]);
        if (!s || s->type != YAML_MAPPING_NODE)
            problem(p, "compose: service %s is missing", required_services[i]);
        else if (!map_get(doc, s, "image") && !map_get(doc, s, "build"))
            problem(p, "compose: service %s has neither image nor build", required_services[i]);
    }
    for (size_t i = 0; i < sizeof(healthchecked_services) / sizeof(healthchecked_services[0]);
         i++) {
        yaml_node_t *s = map_get(doc, services, healthchecked_services[i]);
        if (s && !has_healthcheck(doc, s))
            problem(p, "compose: service %s has no healthcheck", healthchecked_services[i]);
    }
    for (size_t i = 0; i < map_len(services); i++) {
        const char *name = map_key_at(doc, services, i);
        yaml_node_t *s = map_value_at(doc, services, i);
        if (!name || !s || s->type != YAML_MAPPING_NODE) {
            problem(p, "compose: service #%zu is not a mapping", i);
            continue;
        }
        if (!map_get(doc, s, "image") && !map_get(doc, s, "build"))
            problem(p, "compose: service %s has neither image nor build", name);
        check_depends_on(doc, services, name, s, p);
    }
    yaml_node_t *stream = map_get(doc, services, "solarx-stream");
    const char *c = dependency_condition(doc, stream, "migrate");
    if (!c || strcmp(c, "service_completed_successfully") != 0)
        problem(p, "compose: solarx-stream must wait for migrate to complete successfully");
    c = dependency_condition(doc, stream, "kafka");
    if (!c || strcmp(c, "service_healthy") != 0)
        problem(p, "compose: solarx-stream must wait for kafka to be healthy");
}

static void check_declared(yaml_document_t *doc, const char *section, const char *name,
                           const char *service, struct problems *p)
{
    yaml_node_t *top = map_get(doc, yaml_document_get_root_node(doc), section);
    if (!map_get(doc, top, name))
        problem(p, "compose: %s uses %s \"%s\" that the top-level %s does not declare", service,
                section, name, section);
}

/* A relative host path of the compose file must exist (relative to the compose file's dir). */
static void check_host_path(const char *compose_dir, const char *what, const char *path,
                            struct problems *p)
{
    char full[PATH_MAX];
    if (path[0] == '/' || path[0] == '~') {
        problem(p, "compose: %s \"%s\" is outside the repository", what, path);
        return;
    }
    if (!join_path(full, sizeof(full), compose_dir, path) || !path_exists(full))
        problem(p, "compose: %s \"%s\" does not exist (%s)", what, path, full);
}

static void check_volume(yaml_document_t *doc, const char *compose_dir, const char *service,
                         yaml_node_t *volume, struct problems *p)
{
    char source[PATH_MAX];
    const char *type = NULL;
    if (scalar(volume)) {
        const char *spec = scalar(volume);
        const char *colon = strchr(spec, ':');
        if (!colon)
            return; /* anonymous volume: a container path only */
        snprintf(source, sizeof(source), "%.*s", (int)(colon - spec), spec);
        type = strchr("./~", source[0]) ? "bind" : "volume";
    } else {
        const char *s = scalar(map_get(doc, volume, "source"));
        type = scalar(map_get(doc, volume, "type"));
        if (!s || !type)
            return;
        snprintf(source, sizeof(source), "%s", s);
    }
    if (strcmp(type, "bind") == 0)
        check_host_path(compose_dir, "bind mount of service", source, p);
    else if (strcmp(type, "volume") == 0)
        check_declared(doc, "volumes", source, service, p);
}

/* Sets *context to the resolved build context of SERVICE when it builds DOCKERFILE_REAL. */
static void check_build(yaml_document_t *doc, const char *compose_dir, const char *service,
                        yaml_node_t *build, const char *dockerfile_real, bool *builds_ours,
                        char *context, size_t context_size, struct problems *p)
{
    const char *ctx = scalar(build) ? scalar(build) : scalar(map_get(doc, build, "context"));
    const char *dockerfile = scalar(map_get(doc, build, "dockerfile"));
    char ctx_path[PATH_MAX], df_path[PATH_MAX], real_ctx[PATH_MAX], real_df[PATH_MAX];

    if (!ctx)
        ctx = ".";
    if (!dockerfile)
        dockerfile = "Dockerfile";
    if (!join_path(ctx_path, sizeof(ctx_path), compose_dir, ctx) || !realpath(ctx_path, real_ctx)) {
        problem(p, "compose: build context \"%s\" of %s does not exist", ctx, service);
        return;
    }
    if (!join_path(df_path, sizeof(df_path), real_ctx, dockerfile) || !realpath(df_path, real_df)) {
        problem(p, "compose: dockerfile \"%s\" of %s does not exist in %s", dockerfile, service,
                real_ctx);
        return;
    }
    if (strcmp(real_df, dockerfile_real) == 0) {
        *builds_ours = true;
        snprintf(context, context_size, "%s", real_ctx);
    }
}

/* Paths the compose file reads from the repository; CONTEXT receives the build context that
 * docker/Dockerfile is built from (empty when no service builds it). */
static void check_compose_paths(yaml_document_t *doc, const char *compose_dir,
                                const char *dockerfile, char *context, size_t context_size,
                                struct problems *p)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    yaml_node_t *services = map_get(doc, root, "services");
    char dockerfile_real[PATH_MAX];
    bool builds_ours = false;

    context[0] = '\0';
    if (!realpath(dockerfile, dockerfile_real)) {
        problem(p, "%s does not exist", dockerfile);
        return;
    }
    for (size_t i = 0; i < map_len(services); i++) {
        const char *name = map_key_at(doc, services, i);
        yaml_node_t *s = map_value_at(doc, services, i);
        yaml_node_t *build = map_get(doc, s, "build");
        if (!name)
            continue;
        if (build)
            check_build(doc, compose_dir, name, build, dockerfile_real, &builds_ours, context,
                        context_size, p);
        yaml_node_t *volumes = map_get(doc, s, "volumes");
        for (size_t j = 0; j < seq_len(volumes); j++)
            check_volume(doc, compose_dir, name, seq_at(doc, volumes, j), p);
        yaml_node_t *secrets = map_get(doc, s, "secrets");
        for (size_t j = 0; j < seq_len(secrets); j++) {
            yaml_node_t *item = seq_at(doc, secrets, j);
            const char *secret = scalar(item) ? scalar(item) : scalar(map_get(doc, item, "source"));
            if (secret)
                check_declared(doc, "secrets", secret, name, p);
        }
        yaml_node_t *env_file = map_get(doc, s, "env_file");
        if (scalar(env_file))
            check_host_path(compose_dir, "env_file", scalar(env_file), p);
        for (size_t j = 0; j < seq_len(env_file); j++)
            if (scalar(seq_at(doc, env_file, j)))
                check_host_path(compose_dir, "env_file", scalar(seq_at(doc, env_file, j)), p);
    }
    const char *tops[] = {"secrets", "configs"};
    for (size_t t = 0; t < 2; t++) {
        yaml_node_t *top = map_get(doc, root, tops[t]);
        for (size_t i = 0; i < map_len(top); i++) {
            const char *file = scalar(map_get(doc, map_value_at(doc, top, i), "file"));
            if (file)
                check_host_path(compose_dir, tops[t], file, p);
        }
    }
    if (!builds_ours)
        problem(p, "compose: no service builds %s", dockerfile);
}

/* --- Dockerfile checks ----------------------------------------------------------------------- */

struct instruction {
    char keyword[16]; /* upper case */
    char args[4096];  /* continuation lines joined */
};

/* Splits a Dockerfile into instructions; returns how many (at most MAX). */
static size_t parse_dockerfile(const char *text, struct instruction *out, size_t max)
{
    size_t n = 0;
    char logical[8192] = "";
    const char *line = text;
    while (line && *line && n < max) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
        line = end ? end + 1 : NULL;
        char *s = buf;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#')
            continue; /* comments, also inside continuations */
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
            s[--l] = '\0';
        bool more = l > 0 && s[l - 1] == '\\';
        if (more)
            s[--l] = '\0';
        strncat(logical, s, sizeof(logical) - strlen(logical) - 2);
        if (more) {
            strcat(logical, " ");
            continue;
        }
        char *kw = logical;
        while (*kw == ' ')
            kw++;
        if (*kw) {
            size_t k = strcspn(kw, " \t");
            snprintf(out[n].keyword, sizeof(out[n].keyword), "%.*s", (int)k, kw);
            for (char *c = out[n].keyword; *c; c++)
                *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
            const char *args = kw + k;
            while (*args == ' ' || *args == '\t')
                args++;
            snprintf(out[n].args, sizeof(out[n].args), "%s", args);
            n++;
        }
        logical[0] = '\0';
    }
    return n;
}

/* Splits instruction arguments (shell words, or a JSON array of strings) into WORDS. */
static size_t split_args(const char *args, char words[][512], size_t max)
{
    size_t n = 0;
    const char *s = args;
    if (*s == '[') {
        while (n < max && (s = strchr(s, '"')) != NULL) {
            const char *e = strchr(s + 1, '"');
            if (!e)
                break;
            snprintf(words[n++], 512, "%.*s", (int)(e - s - 1), s + 1);
            s = e + 1;
        }
        return n;
    }
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strcspn(s, " \t");
        if (len == 0)
            break;
        snprintf(words[n++], 512, "%.*s", (int)len, s);
        s += len;
    }
    return n;
}

static void add_name(char names[][64], size_t *count, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "solarx-", 7) != 0)
        return;
    for (size_t i = 0; i < *count; i++)
        if (strcmp(names[i], base) == 0)
            return;
    if (*count < MAX_NAMES)
        snprintf(names[(*count)++], 64, "%s", base);
}

/* Reads the ignore patterns of DOCKERFILE.dockerignore (or none). */
static size_t read_ignores(const char *dockerfile, char patterns[][256], size_t max)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s.dockerignore", dockerfile);
    char *text = read_text(path);
    size_t n = 0;
    for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l && n < max;
         l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ')
            l++;
        if (*l && *l != '#' && *l != '!')
            snprintf(patterns[n++], 256, "%s", l);
    }
    free(text);
    return n;
}

/* Every COPY/ADD source of DOCKERFILE must exist in CONTEXT (and not be ignored); every
 * solarx-* binary it copies from a build stage or runs is added to NAMES. */
static void check_dockerfile(const char *dockerfile, const char *context, char names[][64],
                             size_t *name_count, struct problems *p)
{
    static struct instruction ins[256];
    static char words[64][512];
    static char ignores[64][256];
    char *text = read_text(dockerfile);
    if (!text) {
        problem(p, "cannot read %s", dockerfile);
        return;
    }
    size_t count = parse_dockerfile(text, ins, 256);
    size_t ignore_count = read_ignores(dockerfile, ignores, 64);
    size_t copies = 0;
    free(text);
    for (size_t i = 0; i < count; i++) {
        bool copy = strcmp(ins[i].keyword, "COPY") == 0 || strcmp(ins[i].keyword, "ADD") == 0;
        if (strcmp(ins[i].keyword, "ENTRYPOINT") == 0 && split_args(ins[i].args, words, 1) == 1)
            add_name(names, name_count, words[0]);
        if (!copy)
            continue;
        const char *flags_end = ins[i].args;
        bool from_stage = false;
        while (strncmp(flags_end, "--", 2) == 0) {
            if (strncmp(flags_end, "--from=", 7) == 0)
                from_stage = true;
            flags_end += strcspn(flags_end, " \t");
            while (*flags_end == ' ' || *flags_end == '\t')
                flags_end++;
        }
        size_t n = split_args(flags_end, words, 64);
        if (n < 2) {
            problem(p, "%s: %s %s: needs a source and a destination", dockerfile, ins[i].keyword,
                    ins[i].args);
            continue;
        }
        for (size_t w = 0; w + 1 < n; w++) {
            if (from_stage) {
                add_name(names, name_count, words[w]);
                continue;
            }
            char rel[512], full[PATH_MAX];
            const char *src = words[w];
            while (src[0] == '/' || strncmp(src, "./", 2) == 0)
                src += src[0] == '/' ? 1 : 2;
            snprintf(rel, sizeof(rel), "%.*s", (int)sizeof(rel) - 1, src); /* bounded */
            size_t rl = strlen(rel);
            while (rl > 1 && rel[rl - 1] == '/')
                rel[--rl] = '\0';
            glob_t g;
            int rc = join_path(full, sizeof(full), context, rel) ? glob(full, GLOB_NOSORT, NULL, &g)
                                                                 : GLOB_NOMATCH;
            if (rc != 0 || g.gl_pathc == 0)
                problem(p, "%s: %s source \"%s\" does not exist in %s", dockerfile, ins[i].keyword,
                        words[w], context);
            if (rc == 0)
                globfree(&g);
            for (size_t k = 0; k < ignore_count; k++) {
                size_t plen = strlen(ignores[k]);
                if (fnmatch(ignores[k], rel, FNM_PATHNAME) == 0 ||
                    (strncmp(rel, ignores[k], plen) == 0 && rel[plen] == '/'))
                    problem(p, "%s: %s source \"%s\" is excluded by .dockerignore pattern %s",
                            dockerfile, ins[i].keyword, rel, ignores[k]);
            }
            copies++;
        }
    }
    if (copies == 0)
        problem(p, "%s: copies nothing from the repository", dockerfile);
}

/* Binaries the compose file runs by name (entrypoint). */
static void collect_compose_names(yaml_document_t *doc, char names[][64], size_t *count)
{
    static char words[8][512];
    yaml_node_t *services = map_get(doc, yaml_document_get_root_node(doc), "services");
    for (size_t i = 0; i < map_len(services); i++) {
        yaml_node_t *entry = map_get(doc, map_value_at(doc, services, i), "entrypoint");
        if (scalar(entry) && split_args(scalar(entry), words, 1) == 1)
            add_name(names, count, words[0]);
        else if (seq_len(entry) > 0 && scalar(seq_at(doc, entry, 0)))
            add_name(names, count, scalar(seq_at(doc, entry, 0)));
    }
}

/* Each name must be a CMake executable of SOURCE_DIR: solarx-stream is src/main.c, every other
 * tool is tools/<name>.c (CMakeLists.txt globs tools/\*.c into executables). */
static void check_targets(const char *source_dir, char names[][64], size_t count,
                          struct problems *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/CMakeLists.txt", source_dir);
    char *cmake = read_text(path);
    if (!cmake) {
        problem(p, "cannot read %s", path);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], "solarx-stream") == 0) {
            snprintf(path, sizeof(path), "%s/src/main.c", source_dir);
            if (!strstr(cmake, "add_executable(solarx-stream ") || !path_exists(path))
                problem(p, "solarx-stream is not a CMake target (add_executable + src/main.c)");
            continue;
        }
        snprintf(path, sizeof(path), "%s/tools/%s.c", source_dir, names[i]);
        if (!path_exists(path) || !strstr(cmake, "tools/*.c"))
            problem(p, "binary %s has no CMake target (expected %s)", names[i], path);
    }
    free(cmake);
}

static bool has_name(char names[][64], size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void report(const struct problems *p, const char *what)
{
    for (int i = 0; i < p->count && i < MAX_PROBLEMS; i++)
        cr_log_error("%s", p->line[i]);
    cr_expect_eq(p->count, 0, "%s: %d problem(s), first: %s", what, p->count,
                 p->count > 0 ? p->line[0] : "");
}

/* --- the repository's docker/ ---------------------------------------------------------------- */

Test(docker_files, compose_is_valid_yaml_with_promised_services)
{
    yaml_document_t doc;
    char err[512];
    struct problems p = {0};
    cr_assert(load_yaml(DOCKER_DIR "/compose.yaml", &doc, err, sizeof(err)), "%s", err);
    check_compose_services(&doc, &p);
    yaml_document_delete(&doc);
    report(&p, "compose services");
}

Test(docker_files, compose_paths_exist)
{
    yaml_document_t doc;
    char err[512], context[PATH_MAX], src_real[PATH_MAX];
    struct problems p = {0};
    cr_assert(load_yaml(DOCKER_DIR "/compose.yaml", &doc, err, sizeof(err)), "%s", err);
    check_compose_paths(&doc, DOCKER_DIR, DOCKER_DIR "/Dockerfile", context, sizeof(context), &p);
    yaml_document_delete(&doc);
    report(&p, "compose paths");
    cr_assert_not_null(realpath(SOLARX_SOURCE_DIR, src_real));
    cr_expect_str_eq(context, src_real, "docker/Dockerfile must be built from the repository root");
}

Test(docker_files, dockerfile_copies_existing_paths_and_named_binaries_are_targets)
{
    yaml_document_t doc;
    char err[512], names[MAX_NAMES][64];
    size_t count = 0;
    struct problems p = {0};
    check_dockerfile(DOCKER_DIR "/Dockerfile", SOLARX_SOURCE_DIR, names, &count, &p);
    cr_assert(load_yaml(DOCKER_DIR "/compose.yaml", &doc, err, sizeof(err)), "%s", err);
    collect_compose_names(&doc, names, &count);
    yaml_document_delete(&doc);
    cr_expect(has_name(names, count, "solarx-stream"), "the image must ship solarx-stream");
    cr_expect(has_name(names, count, "solarx-sim"), "the image must ship solarx-sim");
    check_targets(SOLARX_SOURCE_DIR, names, count, &p);
    report(&p, "Dockerfile");
}

/* The container path SERVICE's volume mounts from a host file (relative to compose_dir) into
 * OUT; false when no volume of SERVICE mounts container path TARGET. */
static bool host_file_of_mount(yaml_document_t *doc, const char *service, const char *target,
                               char *out, size_t size)
{
    yaml_node_t *services = map_get(doc, yaml_document_get_root_node(doc), "services");
    yaml_node_t *volumes = map_get(doc, map_get(doc, services, service), "volumes");
    for (size_t j = 0; j < seq_len(volumes); j++) {
        const char *spec = scalar(seq_at(doc, volumes, j));
        const char *colon = spec ? strchr(spec, ':') : NULL;
        if (!colon)
            continue;
        size_t tlen = strcspn(colon + 1, ":");
        size_t want = strlen(target);
        /* TARGET itself, or a file under a mounted directory */
        if (strncmp(colon + 1, target, tlen) == 0 &&
            (tlen == want || (want > tlen && target[tlen] == '/'))) {
            snprintf(out, size, "%s/%.*s%s", DOCKER_DIR, (int)(colon - spec), spec, target + tlen);
            return true;
        }
    }
    return false;
}

/* Prometheus scrapes the solarx-stream service on the port docker/solarx-stream.conf listens on,
 * and loads rule files the compose file mounts from the repository. */
static void check_prometheus(yaml_document_t *compose, struct problems *p)
{
    yaml_document_t prom;
    char err[512], path[PATH_MAX];
    if (!host_file_of_mount(compose, "prometheus", "/etc/prometheus/prometheus.yml", path,
                            sizeof(path))) {
        problem(p, "prometheus: no volume mounts /etc/prometheus/prometheus.yml");
        return;
    }
    if (!load_yaml(path, &prom, err, sizeof(err))) {
        problem(p, "prometheus: %s", err);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&prom);
    yaml_node_t *job = seq_at(&prom, map_get(&prom, root, "scrape_configs"), 0);
    yaml_node_t *sc = seq_at(&prom, map_get(&prom, job, "static_configs"), 0);
    const char *target = scalar(seq_at(&prom, map_get(&prom, sc, "targets"), 0));
    char *conf = read_text(DOCKER_DIR "/solarx-stream.conf");
    const char *listen = conf ? strstr(conf, "\nhttp_listen") : NULL;
    const char *port = listen ? strchr(listen, ':') : NULL;
    char want[64] = "";
    if (port)
        snprintf(want, sizeof(want), "solarx-stream:%.*s", (int)strspn(port + 1, "0123456789"),
                 port + 1);
    if (!target || !want[0] || strcmp(target, want) != 0)
        problem(p, "prometheus: scrape target %s, expected %s (docker/solarx-stream.conf)",
                target ? target : "(none)", want[0] ? want : "(no http_listen port)");
    const char *job_name = scalar(map_get(&prom, job, "job_name"));
    if (!job_name || strcmp(job_name, "solarx-stream") != 0)
        problem(p, "prometheus: the job must be named solarx-stream (alerts.yml uses it)");
    yaml_node_t *rules = map_get(&prom, root, "rule_files");
    if (seq_len(rules) == 0)
        problem(p, "prometheus: no rule_files");
    for (size_t i = 0; i < seq_len(rules); i++) {
        const char *rule = scalar(seq_at(&prom, rules, i));
        if (!rule || !host_file_of_mount(compose, "prometheus", rule, path, sizeof(path)) ||
            !path_exists(path))
            problem(p, "prometheus: rule file %s is not mounted from the repository",
                    rule ? rule : "?");
    }
    free(conf);
    yaml_document_delete(&prom);
}

/* Grafana's provisioning and dashboards are mounted from the repository, and the dashboard
 * provider reads the directory the dashboards are mounted at. */
static void check_grafana(yaml_document_t *compose, struct problems *p)
{
    yaml_document_t prov;
    char err[512], path[PATH_MAX];
    static const char *const provisioned[] = {
        "/etc/grafana/provisioning/datasources/solarx.yaml",
        "/etc/grafana/provisioning/dashboards/solarx.yaml",
    };
    for (size_t i = 0; i < sizeof(provisioned) / sizeof(provisioned[0]); i++)
        if (!host_file_of_mount(compose, "grafana", provisioned[i], path, sizeof(path)) ||
            !path_exists(path))
            problem(p, "grafana: %s is not mounted from the repository", provisioned[i]);
    if (!host_file_of_mount(compose, "grafana", provisioned[1], path, sizeof(path)) ||
        !load_yaml(path, &prov, err, sizeof(err)))
        return;
    yaml_node_t *provider =
        seq_at(&prov, map_get(&prov, yaml_document_get_root_node(&prov), "providers"), 0);
    const char *dir = scalar(map_get(&prov, map_get(&prov, provider, "options"), "path"));
    char dashboard[PATH_MAX];
    snprintf(dashboard, sizeof(dashboard), "%s/solarx-stream.json", dir ? dir : "?");
    if (!host_file_of_mount(compose, "grafana", dashboard, path, sizeof(path)) ||
        !path_exists(path))
        problem(p, "grafana: the provider reads %s, where solarx-stream.json is not mounted",
                dir ? dir : "(no path)");
    yaml_document_delete(&prov);
}

Test(docker_files, prometheus_and_grafana_are_wired)
{
    yaml_document_t doc;
    char err[512];
    struct problems p = {0};
    cr_assert(load_yaml(DOCKER_DIR "/compose.yaml", &doc, err, sizeof(err)), "%s", err);
    check_prometheus(&doc, &p);
    check_grafana(&doc, &p);
    yaml_document_delete(&doc);
    report(&p, "prometheus and grafana");
}

/* --- least privilege: which container connects as which role ---------------------------------- */

/* The value of NAME in a service's environment (a mapping, or a list of "NAME=value"), or NULL. */
static const char *service_env(yaml_document_t *doc, yaml_node_t *service, const char *name,
                               char *buf, size_t size)
{
    yaml_node_t *env = map_get(doc, service, "environment");
    if (env && env->type == YAML_MAPPING_NODE)
        return scalar(map_get(doc, env, name));
    size_t len = strlen(name);
    for (size_t i = 0; i < seq_len(env); i++) {
        const char *item = scalar(seq_at(doc, env, i));
        if (item && strncmp(item, name, len) == 0 && item[len] == '=') {
            snprintf(buf, size, "%s", item + len + 1);
            return buf;
        }
    }
    return NULL;
}

static bool service_mounts_secret(yaml_document_t *doc, yaml_node_t *service, const char *secret)
{
    yaml_node_t *secrets = map_get(doc, service, "secrets");
    for (size_t i = 0; i < seq_len(secrets); i++) {
        yaml_node_t *item = seq_at(doc, secrets, i);
        const char *name = scalar(item) ? scalar(item) : scalar(map_get(doc, item, "source"));
        if (name && strcmp(name, secret) == 0)
            return true;
    }
    return false;
}

/* A /run/secrets/NAME password file named in the environment must be a secret the service
 * mounts (else the service stops at start-up); returns NAME, or NULL when VAR is not set. */
static const char *check_password_file(yaml_document_t *doc, const char *service_name,
                                       yaml_node_t *service, const char *var, char *buf,
                                       size_t size, struct problems *p)
{
    const char *file = service_env(doc, service, var, buf, size);
    if (!file)
        return NULL;
    if (strncmp(file, "/run/secrets/", 13) != 0) {
        problem(p, "compose: %s: %s = %s is not a compose secret", service_name, var, file);
        return NULL;
    }
    if (!service_mounts_secret(doc, service, file + 13))
        problem(p, "compose: %s: %s names secret %s, which the service does not mount",
                service_name, var, file + 13);
    return file + 13;
}

static void check_roles(yaml_document_t *doc, struct problems *p)
{
    yaml_node_t *services = map_get(doc, yaml_document_get_root_node(doc), "services");
    yaml_node_t *migrate = map_get(doc, services, "migrate");
    yaml_node_t *stream = map_get(doc, services, "solarx-stream");
    yaml_node_t *postgres = map_get(doc, services, "postgres");
    char buf[512], secret_buf[512];
    const char *v;

    v = service_env(doc, migrate, "SOLARX_POSTGRES_MIGRATE_CONNINFO", buf, sizeof(buf));
    if (!v || !strstr(v, "user=solarx_migrate"))
        problem(p, "compose: migrate must connect as the migration role "
                   "(SOLARX_POSTGRES_MIGRATE_CONNINFO with user=solarx_migrate)");
    const char *migrate_secret =
        check_password_file(doc, "migrate", migrate, "SOLARX_POSTGRES_MIGRATE_PASSWORD_FILE",
                            secret_buf, sizeof(secret_buf), p);
    v = service_env(doc, stream, "SOLARX_POSTGRES_CONNINFO", buf, sizeof(buf));
    if (!v || !strstr(v, "user=solarx_app"))
        problem(p, "compose: solarx-stream must run as the runtime role "
                   "(SOLARX_POSTGRES_CONNINFO with user=solarx_app)");
    if (service_env(doc, stream, "SOLARX_POSTGRES_MIGRATE_CONNINFO", buf, sizeof(buf)) ||
        service_env(doc, stream, "SOLARX_POSTGRES_MIGRATE_PASSWORD_FILE", buf, sizeof(buf)))
        problem(p, "compose: solarx-stream must not get the migration role's connection");
    if (migrate_secret && service_mounts_secret(doc, stream, migrate_secret))
        problem(p, "compose: solarx-stream mounts %s, the migration role's password",
                migrate_secret);
    check_password_file(doc, "solarx-stream", stream, "SOLARX_POSTGRES_PASSWORD_FILE", buf,
                        sizeof(buf), p);
    bool roles_script = false;
    yaml_node_t *volumes = map_get(doc, postgres, "volumes");
    for (size_t i = 0; i < seq_len(volumes); i++) {
        const char *spec = scalar(seq_at(doc, volumes, i));
        roles_script |= spec && strstr(spec, ":/docker-entrypoint-initdb.d/") != NULL;
    }
    if (!roles_script)
        problem(p, "compose: postgres mounts no /docker-entrypoint-initdb.d/ script creating the "
                   "roles");
}

Test(docker_files, compose_migrates_as_the_migration_role_and_runs_as_the_runtime_role)
{
    yaml_document_t doc;
    char err[512];
    struct problems p = {0};
    cr_assert(load_yaml(DOCKER_DIR "/compose.yaml", &doc, err, sizeof(err)), "%s", err);
    check_roles(&doc, &p);
    yaml_document_delete(&doc);
    report(&p, "compose roles");

    char *no_env[] = {NULL};
    struct config *cfg = config_load(DOCKER_DIR "/solarx-stream.conf", no_env, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(strstr(cfg->pg_conninfo, "user=solarx_app"), "container config: conninfo %s",
              cfg->pg_conninfo);
    cr_expect(!cfg->migrate_on_start, "the compose file migrates in its own one-shot service");
    cr_expect(!cfg->pg_migrate_conninfo || !cfg->pg_migrate_conninfo[0],
              "the service's config must not carry the migration role's connection");
    config_destroy(cfg);
}

/* --- the checks themselves catch mistakes ---------------------------------------------------- */

static char scratch[64];

static void make_scratch(void)
{
    snprintf(scratch, sizeof(scratch), "/tmp/solarx-docker-test.XXXXXX");
    cr_assert_not_null(mkdtemp(scratch));
}

static void remove_scratch(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", scratch);
}

static bool any_problem_mentions(const struct problems *p, const char *needle)
{
    for (int i = 0; i < p->count && i < MAX_PROBLEMS; i++)
        if (strstr(p->line[i], needle))
            return true;
    return false;
}

Test(docker_files_selftest, wrong_copy_source_and_unknown_binary_are_caught, .init = make_scratch,
     .fini = remove_scratch)
{
    char path[PATH_MAX], names[MAX_NAMES][64];
    size_t count = 0;
    struct problems p = {0};
    snprintf(path, sizeof(path), "%s/CMakeLists.txt", scratch);
    write_text(path, "add_executable(solarx-stream src/main.c)\n"
                     "file(GLOB SOLARX_TOOL_SOURCES tools/*.c)\n");
    snprintf(path, sizeof(path), "%s/present.txt", scratch);
    write_text(path, "x\n");
    snprintf(path, sizeof(path), "%s/Dockerfile.dockerignore", scratch);
    write_text(path, "ignored\n");
    snprintf(path, sizeof(path), "%s/ignored", scratch);
    write_text(path, "x\n");
    snprintf(path, sizeof(path), "%s/Dockerfile", scratch);
    write_text(path, "FROM debian:bookworm AS build\n"
                     "# COPY commented-out/ /x/\n"
                     "COPY present.txt \\\n"
                     "     confg/ /etc/solarx/\n"
                     "COPY [\"ignored\", \"/x\"]\n"
                     "FROM debian:bookworm-slim\n"
                     "COPY --from=build /build/solarx-stream /build/solarx-nope /usr/bin/\n"
                     "ENTRYPOINT [\"solarx-stream\"]\n");
    check_dockerfile(path, scratch, names, &count, &p);
    check_targets(scratch, names, count, &p);
    cr_expect(any_problem_mentions(&p, "\"confg/\" does not exist"), "missing source not caught");
    cr_expect(any_problem_mentions(&p, "excluded by .dockerignore"), "ignored source not caught");
    cr_expect(any_problem_mentions(&p, "solarx-nope has no CMake target"),
              "unknown binary not caught");
    cr_expect(any_problem_mentions(&p, "solarx-stream is not a CMake target"),
              "solarx-stream without src/main.c not caught");
    cr_expect(!any_problem_mentions(&p, "present.txt"), "existing source reported");
    cr_expect(!any_problem_mentions(&p, "commented-out"), "comment parsed as COPY");
    cr_expect_eq(p.count, 4, "expected exactly the 4 planted problems, got %d", p.count);
}

Test(docker_files_selftest, broken_compose_files_are_caught, .init = make_scratch,
     .fini = remove_scratch)
{
    char path[PATH_MAX], context[PATH_MAX], err[512];
    yaml_document_t doc;
    struct problems p = {0};
    snprintf(path, sizeof(path), "%s/Dockerfile", scratch);
    write_text(path, "FROM debian:bookworm\n");
    snprintf(path, sizeof(path), "%s/compose.yaml", scratch);
    write_text(path, "services:\n"
                     "  kafka: {image: apache/kafka:3.9.1}\n"
                     "  postgres:\n"
                     "    image: postgres:15\n"
                     "    healthcheck: {test: [CMD, pg_isready]}\n"
                     "    volumes: [pgdata:/var/lib/postgresql/data, ./missing.conf:/etc/x]\n"
                     "  migrate: {build: {context: ., dockerfile: Dockerfile}}\n"
                     "  solarx-stream:\n"
                     "    build: .\n"
                     "    depends_on:\n"
                     "      kafka: {condition: service_healthy}\n"
                     "      migrate: {condition: service_started}\n"
                     "  simulator: {build: {context: ., dockerfile: Dockerfile.nope}}\n");
    cr_assert(load_yaml(path, &doc, err, sizeof(err)), "%s", err);
    check_compose_services(&doc, &p);
    snprintf(path, sizeof(path), "%s/Dockerfile", scratch);
    check_compose_paths(&doc, scratch, path, context, sizeof(context), &p);
    yaml_document_delete(&doc);
    cr_expect(any_problem_mentions(&p, "kafka to be healthy, but kafka has no healthcheck"));
    cr_expect(any_problem_mentions(&p, "service kafka has no healthcheck"));
    cr_expect(any_problem_mentions(&p, "service solarx-stream has no healthcheck"));
    cr_expect(any_problem_mentions(&p, "wait for migrate to complete successfully"));
    cr_expect(any_problem_mentions(&p, "\"./missing.conf\" does not exist"));
    cr_expect(any_problem_mentions(&p, "uses volumes \"pgdata\" that the top-level volumes"));
    cr_expect(any_problem_mentions(&p, "\"Dockerfile.nope\" of simulator does not exist"));

    snprintf(path, sizeof(path), "%s/bad.yaml", scratch);
    write_text(path, "services:\n  kafka: [unclosed\n");
    cr_expect_not(load_yaml(path, &doc, err, sizeof(err)), "invalid YAML accepted");
}
