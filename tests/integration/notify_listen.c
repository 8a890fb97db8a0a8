/* Stands in for systemd's notification socket (test_systemd_status.sh): binds an AF_UNIX
 * datagram socket at PATH and prints every sd_notify message it receives as one line (newlines
 * inside a message become " | "), flushed at once, until SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: notify_listen PATH\n");
        return EX_USAGE;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "notify_listen: %s: path too long\n", argv[1]);
        return EX_USAGE;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "notify_listen: %s: %s\n", argv[1], strerror(errno));
        return EX_OSERR;
    }
    struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: recv returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char buf[4096];
    while (!stop) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "notify_listen: recv: %s\n", strerror(errno));
            break;
        }
        while (n > 0 && buf[n - 1] == '\n')
            n--;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                fputs(" | ", stdout);
            else
                fputc(buf[i], stdout);
        }
        fputc('\n', stdout);
        fflush(stdout);
    }
    close(fd);
    unlink(argv[1]);
    return 0;
}
