/*
 * The benchmark backend, in C so the backend is never the bottleneck: one epoll loop, two listeners on
 * 127.0.0.1. "echo" sends every byte back and closes after the client's FIN; "sink" counts what arrives
 * and, after the client's FIN, answers the count in decimal and closes (bulk mode checks it).
 *
 *   backend [--echo-port N] [--sink-port N]     (0 = any free port)
 * Prints {"echo":PORT,"sink":PORT} once listening; runs until killed.
 */
#include <signal.h>
#include <sys/epoll.h>

#include "common.h"

enum kind { ECHO_LISTEN, SINK_LISTEN, ECHO, SINK };

struct conn {
  int fd;
  enum kind kind;
  uint64_t count;
  /* Echo bytes the peer's socket could not take yet; reading stops until they are out. */
  char *pending;
  size_t pending_len, pending_off;
};

static int ep;
static char buf[256 * 1024];

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t len = make_addr("127.0.0.1", port, &ss);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind 127.0.0.1:%d", port);
  if (listen(fd, 4096) < 0) die("listen");
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

static void watch(struct conn *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
  close(c->fd);
  free(c->pending);
  free(c);
}

static void accept_all(struct conn *l) {
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) perror("accept");
      return;
    }
    set_nodelay(fd);
    struct conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->kind = l->kind == ECHO_LISTEN ? ECHO : SINK;
    watch(c, EPOLLIN, EPOLL_CTL_ADD);
  }
}

/* Writes as much as the socket takes; keeps the rest and waits for EPOLLOUT. */
static void echo_out(struct conn *c, const char *data, size_t len) {
  ssize_t n = write(c->fd, data, len);
  if (n < 0) {
    if (errno != EAGAIN) return;
    n = 0;
  }
  if ((size_t)n == len) return;
  c->pending = malloc(len - (size_t)n);
  memcpy(c->pending, data + n, len - (size_t)n);
  c->pending_len = len - (size_t)n;
  c->pending_off = 0;
  watch(c, EPOLLOUT, EPOLL_CTL_MOD);
}

static void on_writable(struct conn *c) {
  ssize_t n = write(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off);
  if (n < 0) {
    if (errno != EAGAIN) drop(c);
    return;
  }
  c->pending_off += (size_t)n;
  if (c->pending_off < c->pending_len) return;
  free(c->pending);
  c->pending = NULL;
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void on_readable(struct conn *c) {
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n < 0) {
    if (errno != EAGAIN) drop(c);
    return;
  }
  if (n == 0) {
    if (c->kind == SINK) {
      char reply[32];
      int len = snprintf(reply, sizeof reply, "%llu\n", (unsigned long long)c->count);
      if (write(c->fd, reply, (size_t)len) < 0) perror("write count");
    }
    drop(c);
    return;
  }
  c->count += (uint64_t)n;
  if (c->kind == ECHO) echo_out(c, buf, (size_t)n);
}

int main(int argc, char **argv) {
  int echo_port = 0, sink_port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--echo-port") == 0) echo_port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--sink-port") == 0) sink_port = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: backend [--echo-port N] [--sink-port N]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  ep = epoll_create1(0);
  struct conn echo_l = {.fd = listen_on(echo_port), .kind = ECHO_LISTEN};
  struct conn sink_l = {.fd = listen_on(sink_port), .kind = SINK_LISTEN};
  watch(&echo_l, EPOLLIN, EPOLL_CTL_ADD);
  watch(&sink_l, EPOLLIN, EPOLL_CTL_ADD);
  printf("{\"echo\":%d,\"sink\":%d}\n", bound_port(echo_l.fd), bound_port(sink_l.fd));
  fflush(stdout);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->kind == ECHO_LISTEN || c->kind == SINK_LISTEN) accept_all(c);
      else if (c->pending != NULL) on_writable(c);
      else on_readable(c);
    }
  }
}
