/*
 * The benchmark load generator, in C so that it costs the relay under test as little CPU as possible.
 * Every mode starts each connection with a real captured ClientHello, so relays route it by SNI.
 *
 *   loadgen conn-rate HOST PORT HELLO [concurrency=32] [seconds=5] [warmup=1]
 *       N connections in flight; each: connect, send the hello, read its echo, close. Latency is
 *       connect() to the last echoed byte.
 *   loadgen ping-pong HOST PORT HELLO [rounds=20000] [seconds=5] [size=64]
 *       one connection: the hello, then 64-byte round trips, one at a time.
 *   loadgen bulk HOST PORT HELLO [mib=4096] [seconds=30]
 *       one stream: the hello, then MiB of data, then FIN; the sink backend answers its byte count.
 *   loadgen idle HOST PORT HELLO [conns=8000] [seconds=60]
 *       opens conns relayed connections (each: hello, echo), prints a "ready" line, then holds them
 *       until stdin closes or seconds pass.
 * Prints one JSON object on stdout (idle: one when ready, one at the end).
 */
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>

#include "common.h"

static char *hello;
static size_t hello_len;
static struct sockaddr_storage target;
static socklen_t target_len;

static void read_hello(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("open %s", path);
  static char data[16384];
  hello_len = fread(data, 1, sizeof data, f);
  fclose(f);
  if (hello_len == 0) die("empty hello %s", path);
  hello = data;
}

/* Latencies in ns, sorted once at the end for percentiles. */
struct samples {
  uint64_t *v;
  size_t n, cap;
};

static void add_sample(struct samples *s, uint64_t ns) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(struct samples *s, double p) {
  if (s->n == 0) return 0;
  size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
  return (double)s->v[i] / 1000.0;
}

static int blocking_connect(void) {
  int fd = socket(target.ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  set_nodelay(fd);
  if (connect(fd, (struct sockaddr *)&target, target_len) < 0) die("connect");
  return fd;
}

static void write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += n;
    len -= (size_t)n;
  }
}

/* False on EOF before len bytes. */
static int read_exact(int fd, char *p, size_t len) {
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    p += n;
    len -= (size_t)n;
  }
  return 1;
}

/* ---- conn-rate ---- */

enum state { FREE, CONNECTING, READING };

struct slot {
  int fd;
  enum state state;
  size_t got;
  uint64_t started;
};

static int ep;

static void slot_start(struct slot *s) {
  s->fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s->fd < 0) die("socket");
  set_nodelay(s->fd);
  s->started = now_ns();
  s->got = 0;
  s->state = CONNECTING;
  if (connect(s->fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) die("connect");
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) die("epoll_ctl");
}

static void slot_close(struct slot *s) {
  close(s->fd);
  s->state = FREE;
}

static int conn_rate(int concurrency, double seconds, double warmup) {
  ep = epoll_create1(0);
  struct slot *slots = calloc((size_t)concurrency, sizeof *slots);
  struct samples lat = {0};
  static char buf[65536];
  uint64_t errors = 0, done = 0, total = 0;
  uint64_t t0 = now_ns();
  uint64_t measure_from = t0 + (uint64_t)(warmup * 1e9);
  uint64_t stop_at = measure_from + (uint64_t)(seconds * 1e9);
  /* In-flight connections get this long to finish once the run is over. */
  uint64_t hard_stop = stop_at + 3000000000ull;
  for (int i = 0; i < concurrency; i++) slot_start(&slots[i]);
  int active = concurrency;
  struct epoll_event events[256];
  while (active > 0) {
    int n = epoll_wait(ep, events, 256, 100);
    uint64_t now = now_ns();
    if (now > hard_stop) break;
    for (int i = 0; i < n; i++) {
      struct slot *s = events[i].data.ptr;
      int finished = 0;
      if (s->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || write(s->fd, hello, hello_len) != (ssize_t)hello_len) {
          errors++;
          finished = 1;
        } else {
          s->state = READING;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
          epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        }
      } else {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0) {
          errors++;
          finished = 1;
        } else {
          s->got += (size_t)r;
          if (s->got >= hello_len) {
            uint64_t t = now_ns();
            total++;
            if (s->started >= measure_from && t <= stop_at) {
              add_sample(&lat, t - s->started);
              done++;
            }
            finished = 1;
          }
        }
      }
      if (finished) {
        slot_close(s);
        if (now_ns() < stop_at) slot_start(s);
        else active--;
      }
    }
  }
  qsort(lat.v, lat.n, sizeof *lat.v, cmp_u64);
  printf("{\"mode\":\"conn-rate\",\"concurrency\":%d,\"seconds\":%.3f,\"connections\":%llu,\"errors\":%llu,"
         "\"conn_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"total\":%llu}\n",
         concurrency, seconds, (unsigned long long)done, (unsigned long long)errors, (double)done / seconds,
         pct_us(&lat, 0.5), pct_us(&lat, 0.99), (unsigned long long)total);
  return done > 0 ? 0 : 1;
}

/* ---- ping-pong ---- */

static int ping_pong(long rounds, double seconds, size_t size) {
  int fd = blocking_connect();
  char echo[16384];
  write_all(fd, hello, hello_len);
  if (!read_exact(fd, echo, hello_len)) die("hello echo");
  char *msg = malloc(size), *back = malloc(size);
  memset(msg, 'p', size);
  struct samples lat = {0};
  /* Warm-up: a tenth of the rounds or of the time, whichever ends first. Counted in rounds alone, a
     loaded machine spent the whole deadline warming up and reported no sample (p50 0). */
  long warm = rounds / 10;
  uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9);
  uint64_t warm_until = start + (uint64_t)(seconds * 1e8);
  long i;
  for (i = 0; i < rounds + warm && now_ns() < deadline; i++) {
    uint64_t t = now_ns();
    write_all(fd, msg, size);
    if (!read_exact(fd, back, size)) die("echo closed");
    if (i >= warm || t >= warm_until) add_sample(&lat, now_ns() - t);
  }
  close(fd);
  qsort(lat.v, lat.n, sizeof *lat.v, cmp_u64);
  printf("{\"mode\":\"ping-pong\",\"size\":%zu,\"rounds\":%zu,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", size, lat.n,
         pct_us(&lat, 0.5), pct_us(&lat, 0.99));
  return lat.n > 0 ? 0 : 1;
}

/* ---- bulk ---- */

static int bulk(long mib, double seconds) {
  int fd = blocking_connect();
  size_t chunk = 256 * 1024;
  char *data = malloc(chunk);
  for (size_t i = 0; i < chunk; i++) data[i] = (char)(i * 7);
  write_all(fd, hello, hello_len);
  uint64_t want = (uint64_t)mib * 1024 * 1024, sent = 0;
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
  while (sent < want) {
    size_t n = want - sent < chunk ? (size_t)(want - sent) : chunk;
    write_all(fd, data, n);
    sent += n;
    /* Bounded in time: a slow relay gets the bytes it managed, not a hung benchmark. */
    if ((sent & ((64u << 20) - 1)) == 0 && now_ns() > deadline) break;
  }
  shutdown(fd, SHUT_WR);
  char reply[64] = {0};
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  uint64_t t1 = now_ns();
  close(fd);
  unsigned long long counted = strtoull(reply, NULL, 10);
  int ok = counted == sent + hello_len;
  double s = (double)(t1 - t0) / 1e9;
  printf("{\"mode\":\"bulk\",\"bytes\":%llu,\"counted\":%llu,\"ok\":%s,\"seconds\":%.3f,\"mib_per_s\":%.1f,"
         "\"gbit_per_s\":%.2f}\n",
         (unsigned long long)sent, counted, ok ? "true" : "false", s, (double)sent / 1048576.0 / s,
         (double)sent * 8 / 1e9 / s);
  return ok ? 0 : 1;
}

/* ---- idle ---- */

static int idle(int conns, double seconds) {
  raise_nofile();
  ep = epoll_create1(0);
  struct slot *slots = calloc((size_t)conns, sizeof *slots);
  static char buf[16384];
  int next = 0, ready = 0, errors = 0, inflight = 0;
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
  struct epoll_event events[256];
  /* At most 256 handshakes at once, so the accept queue never overflows. */
  while (ready + errors < conns && now_ns() < deadline) {
    while (inflight < 256 && next < conns) {
      slot_start(&slots[next++]);
      inflight++;
    }
    int n = epoll_wait(ep, events, 256, 100);
    for (int i = 0; i < n; i++) {
      struct slot *s = events[i].data.ptr;
      if (s->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || write(s->fd, hello, hello_len) != (ssize_t)hello_len) {
          errors++;
          inflight--;
          slot_close(s);
          continue;
        }
        s->state = READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
      } else {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0) {
          errors++;
          inflight--;
          slot_close(s);
          continue;
        }
        s->got += (size_t)r;
        if (s->got >= hello_len) {
          ready++;
          inflight--;
          epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        }
      }
    }
  }
  printf("{\"mode\":\"idle\",\"ready\":%d,\"errors\":%d,\"open_s\":%.3f}\n", ready, errors,
         (double)(now_ns() - t0) / 1e9);
  fflush(stdout);
  /* Hold until the runner closes our stdin (it has read the relay's memory) or time runs out. */
  struct pollfd p = {.fd = 0, .events = POLLIN};
  while (now_ns() < deadline) {
    int left = (int)((deadline - now_ns()) / 1000000);
    if (poll(&p, 1, left > 0 ? left : 1) != 0) {
      char c;
      if (read(0, &c, 1) <= 0 || c == 'q') break;
    }
  }
  for (int i = 0; i < next; i++)
    if (slots[i].state != FREE) close(slots[i].fd);
  return ready > 0 ? 0 : 1;
}

static double arg_num(int argc, char **argv, int i, double dflt) {
  return i < argc ? atof(argv[i]) : dflt;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: loadgen conn-rate|ping-pong|bulk|idle HOST PORT HELLO [args]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const char *mode = argv[1];
  target_len = make_addr(argv[2], atoi(argv[3]), &target);
  read_hello(argv[4]);
  if (strcmp(mode, "conn-rate") == 0)
    return conn_rate((int)arg_num(argc, argv, 5, 32), arg_num(argc, argv, 6, 5), arg_num(argc, argv, 7, 1));
  if (strcmp(mode, "ping-pong") == 0)
    return ping_pong((long)arg_num(argc, argv, 5, 20000), arg_num(argc, argv, 6, 5),
                     (size_t)arg_num(argc, argv, 7, 64));
  if (strcmp(mode, "bulk") == 0) return bulk((long)arg_num(argc, argv, 5, 4096), arg_num(argc, argv, 6, 30));
  if (strcmp(mode, "idle") == 0) return idle((int)arg_num(argc, argv, 5, 8000), arg_num(argc, argv, 6, 60));
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
