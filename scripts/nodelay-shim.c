/* LD_PRELOAD shim for scripts/bench-s3.sh: s3s-fs (the test S3 server) does
 * not set TCP_NODELAY, so its replies stall on delayed ACKs (40 ms at a
 * time); production S3 servers set it. Built and preloaded by the script. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Sets TCP_NODELAY on every accepted connection. */
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    if (c >= 0) { int one = 1; setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
    return c;
}
