/* http_probe: hostile HTTP clients for test_http_limits.sh, each printing one key=value line.
 *   http_probe big HOST PORT BYTES        one request whose header holds BYTES bytes
 *   http_probe slow HOST PORT INTERVAL_MS LIMIT_S
 *                                         a request sent one byte per INTERVAL_MS (slowloris)
 *   http_probe hold HOST PORT N LIMIT_S   N connections that send half a request and wait
 * Exit 0 when the probe ran (the script judges the line), 2 on usage or connect errors. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Sends all of buf; returns the bytes the peer took before it closed. */
static size_t send_all(int fd, const char *buf, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        sent += (size_t)n;
    }
    return sent;
}

/* Whether the server closed fd (EOF or reset) within timeout_ms; data it sent is read and
 * dropped, the first line kept in status (may be NULL). */
static int closed_within(int fd, int timeout_ms, char *status, size_t status_size)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    for (;;) {
        int left = (int)((deadline - now_s()) * 1000);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            return 0;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            return 1;
        buf[n] = '\0';
        if (status && !status[0]) {
            size_t line = strcspn(buf, "\r\n");
            if (line >= status_size)
                line = status_size - 1;
            memcpy(status, buf, line);
            status[line] = '\0';
        }
    }
}

static int probe_big(const char *host, const char *port, size_t bytes)
{
    int fd = connect_to(host, port);
    if (fd < 0)
        return 2;
    static const char head[] = "GET /metrics HTTP/1.1\r\nHost: probe\r\nX-Big: ";
    size_t sent = send_all(fd, head, sizeof(head) - 1);
    char chunk[65536];
    memset(chunk, 'a', sizeof(chunk));
    size_t body_sent = 0;
    while (sent == sizeof(head) - 1 + body_sent && body_sent < bytes) {
        size_t n = bytes - body_sent < sizeof(chunk) ? bytes - body_sent : sizeof(chunk);
        size_t took = send_all(fd, chunk, n);
        body_sent += took;
        sent += took;
        if (took < n)
            break;
    }
    if (body_sent == bytes)
        sent += send_all(fd, "\r\n\r\n", 4);
    char status[256] = "";
    closed_within(fd, 10000, status, sizeof(status));
    printf("sent=%zu complete=%d status=\"%s\"\n", sent, body_sent == bytes, status);
    close(fd);
    return 0;
}

static int probe_slow(const char *host, const char *port, int interval_ms, int limit_s)
{
    int fd = connect_to(host, port);
    if (fd < 0)
        return 2;
    static const char request[] =
        "GET /metrics HTTP/1.1\r\nHost: probe\r\nX-Slow: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    double start = now_s();
    size_t i = 0;
    int closed = 0;
    while (!closed && now_s() - start < limit_s) {
        if (send_all(fd, request + i % (sizeof(request) - 1), 1) != 1)
            closed = 1;
        i++;
        closed = closed || closed_within(fd, interval_ms, NULL, 0);
    }
    printf("closed=%d after_s=%.1f bytes=%zu\n", closed, now_s() - start, i);
    close(fd);
    return 0;
}

static int probe_hold(const char *host, const char *port, int n, int limit_s)
{
    int *fds = calloc((size_t)n, sizeof(*fds));
    if (!fds)
        return 2;
    int opened = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = connect_to(host, port);
        if (fds[i] >= 0) {
            opened++;
            send_all(fds[i], "GET /metrics HTTP/1.1\r\n", 23);
        }
    }
    double start = now_s();
    int closed = 0;
    while (closed < opened && now_s() - start < limit_s) {
        for (int i = 0; i < n; i++) {
            if (fds[i] >= 0 && closed_within(fds[i], 0, NULL, 0)) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
        usleep(100000);
    }
    printf("opened=%d closed=%d after_s=%.1f\n", opened, closed, now_s() - start);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "big") == 0)
        return probe_big(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "slow") == 0)
        return probe_slow(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "hold") == 0)
        return probe_hold(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: http_probe big|slow|hold HOST PORT ...\n");
    return 2;
}
