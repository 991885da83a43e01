// The native data plane: listeners, accept, connect and the byte relay in C, on Node's own libuv loop.
// Every decision (detect, route, limits, timeouts of detect and connect) stays in TypeScript; see
// lib/dataplane/addon.ts for the typed mirror of this boundary.
//
// The JS boundary (all numbers are plain JS numbers; `slot` names one connection until it is freed):
//   init(shared: ArrayBuffer, onAccept, onData, onConnect, onEnd, onAcceptError)
//     shared is the hot buffer: C reads client bytes into it before onData, JS writes the head (PROXY
//     header + peeked bytes) into it before relay(). JS allocates it (external buffers are refused where
//     V8's sandbox is on).
//   listen(host, port, ipv6Only, backlog, reusePort) -> listener id >= 0, or -errno
//   listenerPort(id) -> bound port;  closeListener(id);  pauseAccept(id, paused)
//   connect(slot, ip, port) -> 0 or errno (the answer comes in onConnect(slot, errno))
//   relay(slot, headLen, clientEnded, idleMs) -> 0, or an errno if the head could not be written at all
//   dropBackend(slot)  abandons a connect attempt (timed out)
//   close(slot, reset[, replyLen])  ends a connection in any stage with no callback (refusals, aborts);
//                       replyLen > 0 sends shared[0..replyLen) to the client first, then FIN
//   bytes(slot, dir) -> bytes relayed client->backend (0) or backend->client (1); 2: ms since the last byte
//   local(slot) -> [address, port] of the client's local end
//   counts() -> [connections, listeners] held by C (tests check they return to 0)
// Callbacks, each called synchronously from the poll callback:
//   onAccept(slot, listenerId, address, port)   a new client; detection reads start at once
//   onData(slot, n)       n > 0 bytes of the client's in shared[0..n); 0: FIN; < 0: -errno (client gone)
//   onConnect(slot, errno) the backend connect finished (0) or failed (errno; the socket is closed)
//   onEnd(slot, reason, errno, bytesUp, bytesDown)  a relay is over; the slot is free after it returns
//   onAcceptError(listenerId, errno)  accept4 failed for lack of fds/memory and the reserve fd could not
//                       drain the backlog: accepting is paused on it until pauseAccept(id, false)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define ACCEPT_BATCH 64
#define EVENT_BATCH 128
#define MAX_LISTENERS 256
#define PARK_POOL_MAX 64
#define KEEPALIVE_S 60
// One read's worth: what recv asks for and what a pooled park buffer holds. The shared buffer may be
// larger (it also carries the head: PROXY header + up to limits.max_peek_bytes).
#define HOT_READ 65536

enum { ST_DETECT, ST_CONNECT, ST_RELAY, ST_DEAD };
enum { UP = 0, DOWN = 1 };
enum { CLIENT = 0, BACKEND = 1 };
// Mirrors EndReason in lib/dataplane/addon.ts.
enum { END_CLIENT_CLOSED = 1, END_BACKEND_CLOSED, END_CLIENT_ERROR, END_BACKEND_ERROR, END_IDLE };

typedef struct conn conn;

/** One socket of a connection; epoll's data.ptr points here. kind tells a listener from a side. */
typedef struct side {
  uint8_t kind; // 0: side of a connection, 1: listener
  uint8_t which;
  int fd;
  uint32_t mask; // events registered with epoll now
  conn *c;
} side;

typedef struct listener {
  side s; // first, so a side * from epoll is a listener *
  int id;
  int paused;
  struct listener *next_dead;
} listener;

/**
 * Marks a side taken out of the epoll set: it hung up (HUP is reported whatever the mask, so a side
 * that waits for nothing would spin level-triggered). set_mask adds it back when it has to be read or
 * written again: a backend's FIN can land while the relay is not reading it because bytes for the
 * client are parked, and the rest of its bytes and that FIN are read once they drain.
 */
#define MASK_OUT EPOLLONESHOT

/** Bytes a side could not take yet, waiting for it to become writable. */
typedef struct park {
  char *buf;
  uint32_t off, len, cap;
} park;

struct conn {
  side sides[2];
  uint32_t slot;
  uint8_t state;
  uint8_t fin[2];      // EOF read on the source of direction d
  uint8_t shut[2];     // shutdown(SHUT_WR) done on the destination of direction d
  uint8_t first_fin;   // 0: none yet, else 1 + the side that sent the first FIN
  park parked[2];
  double bytes[2];
  uint64_t active_at; // uv_now() of the last byte either way
  uint32_t idle_ms;
  conn *idle_prev, *idle_next; // relaying connections with an idle timeout
  conn *next_dead;
};

static struct {
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t idle_timer;
  int epfd;
  int ready;
  napi_ref shared_ref;
  char *hot;
  size_t hot_len;
  napi_ref cb_accept, cb_data, cb_connect, cb_end, cb_accept_error;
  conn **slots;
  uint32_t nslots, *free_slots, nfree;
  uint32_t live;
  listener *listeners[MAX_LISTENERS];
  int nlisteners;
  char *park_pool[PARK_POOL_MAX];
  int npark;
  conn *idle_head;
  uint64_t idle_period;
  int dispatching;
  conn *dead;
  listener *dead_listeners;
  int reserve_fd; // kept open to be given up when accept4 runs out of fds (libuv's EMFILE trick)
} g;

// ---- small helpers -------------------------------------------------------------------------------

static void update_ref(void) {
  // The loop stays alive while C holds sockets, as it would for net.Server and net.Socket.
  if (g.live > 0 || g.nlisteners > 0) uv_ref((uv_handle_t *)&g.poll);
  else uv_unref((uv_handle_t *)&g.poll);
}

/** 0, or the errno of putting a side that hung up back into the epoll set. */
static int set_mask(side *s, uint32_t mask) {
  if (s->fd < 0 || s->mask == mask) return 0;
  struct epoll_event ev = {.events = mask, .data.ptr = s};
  if (s->mask == MASK_OUT) {
    if (mask == 0) return 0;
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) return errno;
  } else {
    epoll_ctl(g.epfd, EPOLL_CTL_MOD, s->fd, &ev);
  }
  s->mask = mask;
  return 0;
}

static int add_fd(side *s, uint32_t mask) {
  struct epoll_event ev = {.events = mask, .data.ptr = s};
  if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) return errno;
  s->mask = mask;
  return 0;
}

static void close_fd(side *s, int reset) {
  if (s->fd < 0) return;
  if (reset) {
    // SO_LINGER 0: close sends RST, so the peer learns the stream was cut, not finished.
    struct linger l = {1, 0};
    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close(s->fd); // also removes it from the epoll set
  s->fd = -1;
  s->mask = 0;
}

/** A park buffer of at least n bytes: pooled for a read's worth, exact for a large head. */
static int park_get(park *p, size_t n) {
  if (n > HOT_READ) {
    p->buf = malloc(n);
    p->cap = (uint32_t)n;
  } else {
    p->buf = g.npark > 0 ? g.park_pool[--g.npark] : malloc(HOT_READ);
    p->cap = HOT_READ;
  }
  return p->buf != NULL;
}

static void park_put(park *p) {
  if (p->buf == NULL) return;
  if (p->cap == HOT_READ && g.npark < PARK_POOL_MAX) g.park_pool[g.npark++] = p->buf;
  else free(p->buf);
  p->buf = NULL;
  p->off = p->len = 0;
}

static void idle_unlink(conn *c) {
  if (c->idle_ms == 0) return;
  if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
  else g.idle_head = c->idle_next;
  if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
  c->idle_prev = c->idle_next = NULL;
  c->idle_ms = 0;
}

/** Frees a connection's memory and slot; its fds are closed already. Deferred while events are handled. */
static void release(conn *c) {
  c->state = ST_DEAD;
  idle_unlink(c);
  park_put(&c->parked[UP]);
  park_put(&c->parked[DOWN]);
  g.slots[c->slot] = NULL;
  g.free_slots[g.nfree++] = c->slot;
  g.live--;
  if (g.dispatching) {
    c->next_dead = g.dead;
    g.dead = c;
  } else {
    free(c);
  }
  update_ref();
}

static void close_conn(conn *c, int reset) {
  close_fd(&c->sides[CLIENT], reset);
  close_fd(&c->sides[BACKEND], reset);
  release(c);
}

/** Frees what was closed while a batch of events (which may still point at it) was being handled. */
static void free_dead(void) {
  while (g.dead) {
    conn *c = g.dead;
    g.dead = c->next_dead;
    free(c);
  }
  while (g.dead_listeners) {
    listener *l = g.dead_listeners;
    g.dead_listeners = l->next_dead;
    free(l);
  }
}

// ---- calls into JS -------------------------------------------------------------------------------

/** Calls a callback with numbers (and one string); an exception it throws goes to uncaughtException. */
static void call_js(napi_ref ref, int argc, const double *nums, const char *str, int str_at) {
  napi_env env = g.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, argv[6], result;
  napi_get_reference_value(env, ref, &fn);
  napi_get_undefined(env, &recv);
  for (int i = 0; i < argc; i++) {
    if (i == str_at) napi_create_string_latin1(env, str, NAPI_AUTO_LENGTH, &argv[i]);
    else napi_create_double(env, nums[i], &argv[i]);
  }
  napi_status st = napi_call_function(env, recv, fn, (size_t)argc, argv, &result);
  if (st == napi_pending_exception) {
    // A throw here would otherwise vanish: the poll callback has no JS caller to propagate to.
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void end_relay(conn *c, int reason, int err, int reset) {
  double up = c->bytes[UP], down = c->bytes[DOWN];
  uint32_t slot = c->slot;
  close_conn(c, reset);
  double a[5] = {slot, reason, err, up, down};
  call_js(g.cb_end, 5, a, NULL, -1);
}

/** A syscall on side `who` failed with err: the relay ends, a reset passed on as a reset. */
static void fail(conn *c, int who, int err) {
  end_relay(c, who == CLIENT ? END_CLIENT_ERROR : END_BACKEND_ERROR, err, err == ECONNRESET);
}

// ---- the relay -----------------------------------------------------------------------------------

/**
 * The one place that decides what each side waits for: read a side while its direction is open and
 * nothing of it is parked; write a side while bytes for it are parked.
 */
static void relay_masks(conn *c) {
  uint32_t m[2] = {0, 0};
  if (!c->fin[UP] && c->parked[UP].len == 0) m[CLIENT] |= EPOLLIN;
  if (!c->fin[DOWN] && c->parked[DOWN].len == 0) m[BACKEND] |= EPOLLIN;
  if (c->parked[UP].len > 0) m[BACKEND] |= EPOLLOUT;
  if (c->parked[DOWN].len > 0) m[CLIENT] |= EPOLLOUT;
  // Every caller returns right after this, so a failure may end the relay here.
  for (int w = CLIENT; w <= BACKEND; w++) {
    int err = set_mask(&c->sides[w], m[w]);
    if (err != 0) {
      fail(c, w, err);
      return;
    }
  }
}

/** Passes a FIN on once every byte before it is out; ends the relay when both ways are done. */
static int finish_dir(conn *c, int d) {
  if (!c->fin[d] || c->shut[d] || c->parked[d].len > 0) return 0;
  side *dst = &c->sides[d == UP ? BACKEND : CLIENT];
  // The other way is done, so dst's EOF was read and nothing waits unread in it: the close that ends
  // the relay sends this FIN itself, one system call fewer per connection.
  if (!c->shut[!d] && shutdown(dst->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
    fail(c, dst->which, errno);
    return 1;
  }
  c->shut[d] = 1;
  if (c->shut[UP] && c->shut[DOWN]) {
    end_relay(c, c->first_fin == 1 + BACKEND ? END_BACKEND_CLOSED : END_CLIENT_CLOSED, 0, 0);
    return 1;
  }
  return 0;
}

/** Sends what was read into the hot buffer; parks what the destination could not take. 1: relay over. */
static int forward(conn *c, int d, const char *buf, size_t n) {
  side *dst = &c->sides[d == UP ? BACKEND : CLIENT];
  size_t done = 0;
  while (done < n) {
    ssize_t w = send(dst->fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) {
      done += (size_t)w;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    fail(c, dst->which, errno);
    return 1;
  }
  if (done < n) {
    park *p = &c->parked[d];
    if (p->buf == NULL && !park_get(p, n - done)) {
      fail(c, dst->which, ENOMEM);
      return 1;
    }
    memcpy(p->buf, buf + done, n - done);
    p->off = 0;
    p->len = (uint32_t)(n - done);
  }
  return 0;
}

static void on_relay_readable(conn *c, side *s) {
  int d = s->which == CLIENT ? UP : DOWN;
  ssize_t n;
  do n = recv(s->fd, g.hot, HOT_READ, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    fail(c, s->which, errno);
    return;
  }
  if (n == 0) {
    c->fin[d] = 1;
    if (c->first_fin == 0) c->first_fin = 1 + s->which;
    if (finish_dir(c, d)) return;
    relay_masks(c);
    return;
  }
  c->bytes[d] += (double)n;
  c->active_at = uv_now(g.loop);
  if (forward(c, d, g.hot, (size_t)n)) return;
  relay_masks(c);
}

static void on_relay_writable(conn *c, side *s) {
  int d = s->which == BACKEND ? UP : DOWN;
  park *p = &c->parked[d];
  while (p->len > 0) {
    ssize_t w = send(s->fd, p->buf + p->off, p->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail(c, s->which, errno);
      return;
    }
    p->off += (uint32_t)w;
    p->len -= (uint32_t)w;
  }
  park_put(p);
  if (finish_dir(c, d)) return;
  relay_masks(c);
}

/** No delay; keepalive probes after a minute of silence, so a vanished peer doesn't hold the other. */
static void set_tcp_options(int fd) {
  int one = 1, idle = KEEPALIVE_S;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
}

static int sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

// ---- events --------------------------------------------------------------------------------------

static void on_detect_event(conn *c, uint32_t ev) {
  side *s = &c->sides[CLIENT];
  ssize_t n;
  if (ev & EPOLLIN) {
    do n = recv(s->fd, g.hot, HOT_READ, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) n = -errno;
  } else {
    n = -sock_error(s->fd);
    if (n == 0) n = -ECONNRESET;
  }
  // After a FIN or an error there is nothing more to read: stop asking (level-triggered would spin).
  if (n <= 0) set_mask(s, 0);
  double a[2] = {c->slot, (double)n};
  call_js(g.cb_data, 2, a, NULL, -1);
}

static void on_connect_event(conn *c, side *s, uint32_t ev) {
  if (s->which == CLIENT) {
    // While the backend connects, only the client's end matters: more bytes or a FIN stay for the
    // relay to read (the mask goes to 0 at the first of them, so level-triggered does not spin), an
    // error (reset) refuses the connection as a detect-stage error would.
    if (ev & (EPOLLERR | EPOLLHUP)) {
      int err = sock_error(s->fd);
      set_mask(s, 0);
      double a[2] = {c->slot, -(double)(err ? err : ECONNRESET)};
      call_js(g.cb_data, 2, a, NULL, -1);
    } else {
      set_mask(s, 0);
    }
    return;
  }
  // Writable without an error flag is a finished connect: no SO_ERROR to fetch.
  int fd = s->fd;
  int err = ev & (EPOLLERR | EPOLLHUP) ? sock_error(fd) : 0;
  if (err == 0 && ev & EPOLLHUP) err = ECONNRESET;
  if (err != 0) close_fd(s, 0);
  double a[2] = {c->slot, err};
  call_js(g.cb_connect, 2, a, NULL, -1);
  // JS usually starts the relay inside the callback, and relay() sets the masks it needs: only when it
  // did not does the backend stop asking for EPOLLOUT (level-triggered, it would spin).
  if (err == 0 && c->state == ST_CONNECT && s->fd == fd) set_mask(s, 0);
}

static void on_relay_event(conn *c, side *s, uint32_t ev) {
  if (ev & (EPOLLERR | EPOLLHUP)) {
    // HUP alone (both ways shut, or FIN after our FIN) carries no error to fetch.
    int err = ev & EPOLLERR ? sock_error(s->fd) : 0;
    if (err != 0) {
      fail(c, s->which, err);
      return;
    }
    if (s->mask == 0) {
      // Hung up both ways (its FIN is in, ours went out) while it waits for nothing: either it is done
      // with, or its bytes wait unread until the other side drains. Out of the set until then.
      epoll_ctl(g.epfd, EPOLL_CTL_DEL, s->fd, NULL);
      s->mask = MASK_OUT;
      return;
    }
  }
  if (ev & EPOLLOUT) {
    on_relay_writable(c, s);
    if (c->state != ST_RELAY) return;
  }
  if ((ev & (EPOLLIN | EPOLLHUP)) && (s->mask & EPOLLIN)) on_relay_readable(c, s);
}

static void new_client(listener *l, int fd, struct sockaddr_storage *ss) {
  if (g.nfree == 0) {
    uint32_t n = g.nslots ? g.nslots * 2 : 1024;
    conn **slots = realloc(g.slots, n * sizeof *slots);
    uint32_t *fr = slots ? realloc(g.free_slots, n * sizeof *fr) : NULL;
    if (slots) g.slots = slots;
    if (fr == NULL) {
      close(fd);
      return;
    }
    g.free_slots = fr;
    for (uint32_t i = n; i > g.nslots; i--) g.free_slots[g.nfree++] = i - 1;
    for (uint32_t i = g.nslots; i < n; i++) g.slots[i] = NULL;
    g.nslots = n;
  }
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    return;
  }
  c->slot = g.free_slots[--g.nfree];
  g.slots[c->slot] = c;
  g.live++;
  c->state = ST_DETECT;
  c->sides[CLIENT] = (side){.kind = 0, .which = CLIENT, .fd = fd, .c = c};
  c->sides[BACKEND] = (side){.kind = 0, .which = BACKEND, .fd = -1, .c = c};
  // TCP_NODELAY and keepalive come from the listener (set_tcp_options): Linux copies them on accept.
  if (add_fd(&c->sides[CLIENT], EPOLLIN) != 0) {
    close_conn(c, 0);
    return;
  }
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (ss->ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    port = ntohs(a->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    port = ntohs(a->sin6_port);
  }
  update_ref();
  double a[4] = {c->slot, l->id, 0, port};
  call_js(g.cb_accept, 4, a, text, 2);
}

/** Opens the reserve fd if it is not held (it may have been lost to a full table). */
static void reserve_take(void) {
  if (g.reserve_fd < 0) g.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/** Accepts and closes every client waiting on l using the reserve fd; 1 when the backlog is empty. */
static int reserve_drain(listener *l, int err) {
  if (g.reserve_fd < 0 || (err != EMFILE && err != ENFILE)) return 0;
  close(g.reserve_fd);
  g.reserve_fd = -1;
  for (;;) {
    int fd = accept4(l->s.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    else if (errno != EINTR && errno != ECONNABORTED) break;
  }
  int drained = errno == EAGAIN || errno == EWOULDBLOCK;
  reserve_take();
  return drained && g.reserve_fd >= 0;
}

static void on_listener_event(listener *l) {
  for (int i = 0; i < ACCEPT_BATCH && !l->paused && l->s.fd >= 0; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(l->s.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      new_client(l, fd, &ss);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      int err = errno;
      // Out of fds, the backlog would hold clients nobody can serve: free the reserve fd, accept and
      // close what waits (they learn at once, as on the js plane: libuv's EMFILE trick), take the
      // reserve back. The backlog is then empty, so the listener stays watched: pausing it instead
      // let clients pile up behind dead ones, and the first accepts after fds came back were spent on
      // the dead, so a live client queued behind them met the next drain (issue 11).
      if (reserve_drain(l, err)) return;
      // No reserve to give up (or out of memory): level-triggered, a full fd table would spin here, so
      // stop watching until JS says try again.
      l->paused = 1;
      set_mask(&l->s, 0);
      double a[2] = {l->id, err};
      call_js(g.cb_accept_error, 2, a, NULL, -1);
    }
    return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  struct epoll_event evs[EVENT_BATCH];
  int n = epoll_wait(g.epfd, evs, EVENT_BATCH, 0);
  g.dispatching = 1;
  for (int i = 0; i < n; i++) {
    side *s = evs[i].data.ptr;
    uint32_t ev = evs[i].events;
    if (s->kind == 1) {
      on_listener_event((listener *)s);
      continue;
    }
    conn *c = s->c;
    if (s->fd < 0) continue; // closed by an earlier event of this batch
    switch (c->state) {
    case ST_DETECT:
      on_detect_event(c, ev);
      break;
    case ST_CONNECT:
      on_connect_event(c, s, ev);
      break;
    case ST_RELAY:
      on_relay_event(c, s, ev);
      break;
    default:
      break;
    }
  }
  g.dispatching = 0;
  free_dead();
}

static void on_idle_timer(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_now(g.loop);
  g.dispatching = 1;
  conn *c = g.idle_head;
  while (c) {
    conn *next = c->idle_next;
    if (now - c->active_at >= c->idle_ms) end_relay(c, END_IDLE, 0, 0);
    c = next;
  }
  g.dispatching = 0;
  free_dead();
  if (g.idle_head == NULL) {
    uv_timer_stop(&g.idle_timer);
    g.idle_period = 0;
  }
}

// ---- JS-facing functions -------------------------------------------------------------------------

#define ARGS(n)                                                                                    \
  size_t argc = n;                                                                                 \
  napi_value argv[n];                                                                              \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static int32_t arg_i32(napi_env env, napi_value v) {
  int32_t r = 0;
  napi_get_value_int32(env, v, &r);
  return r;
}

static conn *arg_conn(napi_env env, napi_value v) {
  uint32_t slot = 0;
  if (napi_get_value_uint32(env, v, &slot) != napi_ok || slot >= g.nslots) return NULL;
  conn *c = g.slots[slot];
  return c && c->state != ST_DEAD ? c : NULL;
}

/** A numeric IPv4 or IPv6 address (JS resolved any name) as a sockaddr; the family, or -1. */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sl) {
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *sl = sizeof *a;
    return AF_INET6;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *sl = sizeof *a;
  return AF_INET;
}

static napi_value js_init(napi_env env, napi_callback_info info) {
  ARGS(6);
  if (g.ready) {
    napi_throw_error(env, NULL, "the native data plane is already initialised in this process");
    return NULL;
  }
  void *data;
  size_t len;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok || len < HOT_READ) {
    napi_throw_type_error(env, NULL, "init: the shared buffer must be an ArrayBuffer of 64 KiB or more");
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &g.shared_ref);
  g.hot = data;
  g.hot_len = len;
  napi_create_reference(env, argv[1], 1, &g.cb_accept);
  napi_create_reference(env, argv[2], 1, &g.cb_data);
  napi_create_reference(env, argv[3], 1, &g.cb_connect);
  napi_create_reference(env, argv[4], 1, &g.cb_end);
  napi_create_reference(env, argv[5], 1, &g.cb_accept_error);
  g.env = env;
  napi_get_uv_event_loop(env, &g.loop);
  // One uv_poll over a private epoll set: uv_poll per fd costs ~11 epoll_ctl per connection.
  g.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  g.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (g.epfd < 0) {
    napi_throw_error(env, NULL, "init: epoll_create1 failed");
    return NULL;
  }
  uv_poll_init(g.loop, &g.poll, g.epfd);
  uv_poll_start(&g.poll, UV_READABLE, on_poll);
  uv_timer_init(g.loop, &g.idle_timer);
  uv_unref((uv_handle_t *)&g.idle_timer);
  update_ref();
  g.ready = 1;
  return NULL;
}

static napi_value js_listen(napi_env env, napi_callback_info info) {
  ARGS(5);
  char host[64];
  size_t hl;
  napi_get_value_string_latin1(env, argv[0], host, sizeof host, &hl);
  int port = arg_i32(env, argv[1]);
  bool v6only = false, reuse = false;
  napi_get_value_bool(env, argv[2], &v6only);
  int backlog = arg_i32(env, argv[3]);
  napi_get_value_bool(env, argv[4], &reuse);
  struct sockaddr_storage ss;
  socklen_t sl;
  int family = numeric_addr(host, port, &ss, &sl);
  if (family < 0) return num(env, -EINVAL);
  int slot = -1;
  for (int i = 0; i < MAX_LISTENERS; i++)
    if (g.listeners[i] == NULL) {
      slot = i;
      break;
    }
  if (slot < 0) return num(env, -EMFILE);
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  int one = 1, v6 = v6only ? 1 : 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
  // Set once here, they are inherited by every accepted socket: three setsockopt per client fewer.
  set_tcp_options(fd);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    return num(env, -err);
  }
  listener *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(fd);
    return num(env, -ENOMEM);
  }
  l->s = (side){.kind = 1, .fd = fd};
  l->id = slot;
  int err = add_fd(&l->s, EPOLLIN);
  if (err != 0) {
    close(fd);
    free(l);
    return num(env, -err);
  }
  g.listeners[slot] = l;
  g.nlisteners++;
  update_ref();
  return num(env, slot);
}

static listener *arg_listener(napi_env env, napi_value v) {
  int32_t id = arg_i32(env, v);
  return id >= 0 && id < MAX_LISTENERS ? g.listeners[id] : NULL;
}

static napi_value js_listener_port(napi_env env, napi_callback_info info) {
  ARGS(1);
  listener *l = arg_listener(env, argv[0]);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (l == NULL || getsockname(l->s.fd, (struct sockaddr *)&ss, &len) < 0) return num(env, -1);
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return num(env, port);
}

static napi_value js_close_listener(napi_env env, napi_callback_info info) {
  ARGS(1);
  listener *l = arg_listener(env, argv[0]);
  if (l == NULL) return NULL;
  close_fd(&l->s, 0);
  g.listeners[l->id] = NULL;
  g.nlisteners--;
  // Events of a batch being handled may still point at it (fd -1: they do nothing): free it after.
  if (g.dispatching) {
    l->next_dead = g.dead_listeners;
    g.dead_listeners = l;
  } else {
    free(l);
  }
  update_ref();
  return NULL;
}

static napi_value js_pause_accept(napi_env env, napi_callback_info info) {
  ARGS(2);
  listener *l = arg_listener(env, argv[0]);
  bool paused = false;
  napi_get_value_bool(env, argv[1], &paused);
  if (l == NULL) return NULL;
  l->paused = paused;
  if (!paused) reserve_take();
  set_mask(&l->s, paused ? 0 : EPOLLIN);
  return NULL;
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  ARGS(3);
  conn *c = arg_conn(env, argv[0]);
  if (c == NULL || c->state == ST_RELAY) return num(env, EINVAL);
  char host[64];
  size_t hl;
  napi_get_value_string_latin1(env, argv[1], host, sizeof host, &hl);
  int port = arg_i32(env, argv[2]);
  side *b = &c->sides[BACKEND];
  close_fd(b, 0); // a timed-out previous attempt
  struct sockaddr_storage ss;
  socklen_t sl;
  int family = numeric_addr(host, port, &ss, &sl);
  if (family < 0) return num(env, EINVAL);
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, errno);
  set_tcp_options(fd);
  if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return num(env, err);
  }
  b->fd = fd;
  int err = add_fd(b, EPOLLOUT);
  if (err != 0) {
    close_fd(b, 0);
    return num(env, err);
  }
  // The client's mask stays as it is: the relay reads it again, and anything that comes meanwhile
  // is handled (once) by on_connect_event. Two epoll_ctl per connection fewer.
  if (c->state == ST_DETECT) c->state = ST_CONNECT;
  return num(env, 0);
}

static napi_value js_drop_backend(napi_env env, napi_callback_info info) {
  ARGS(1);
  conn *c = arg_conn(env, argv[0]);
  if (c != NULL && c->state == ST_CONNECT) close_fd(&c->sides[BACKEND], 0);
  return NULL;
}

static napi_value js_relay(napi_env env, napi_callback_info info) {
  ARGS(4);
  conn *c = arg_conn(env, argv[0]);
  if (c == NULL || c->state != ST_CONNECT || c->sides[BACKEND].fd < 0) return num(env, EINVAL);
  uint32_t head = 0, idle = 0;
  napi_get_value_uint32(env, argv[1], &head);
  bool ended = false;
  napi_get_value_bool(env, argv[2], &ended);
  napi_get_value_uint32(env, argv[3], &idle);
  if (head > g.hot_len) return num(env, EINVAL);
  c->state = ST_RELAY;
  c->active_at = uv_now(g.loop);
  if (idle > 0) {
    c->idle_ms = idle;
    c->idle_next = g.idle_head;
    if (g.idle_head) g.idle_head->idle_prev = c;
    g.idle_head = c;
    uint64_t period = idle / 10 < 10 ? 10 : idle / 10 > 1000 ? 1000 : idle / 10;
    if (g.idle_period == 0 || period < g.idle_period) {
      g.idle_period = period;
      uv_timer_start(&g.idle_timer, on_idle_timer, period, period);
    }
  }
  if (ended) {
    c->fin[UP] = 1;
    c->first_fin = 1 + CLIENT;
  }
  c->bytes[UP] = head;
  // From here on the relay reports its own end (onEnd), also for a failure writing the head.
  int was = g.dispatching;
  g.dispatching = 1;
  if (head > 0 && forward(c, UP, g.hot, head)) goto out;
  if (finish_dir(c, UP)) goto out;
  relay_masks(c);
out:
  g.dispatching = was;
  if (!was) free_dead();
  return num(env, 0);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(3);
  conn *c = arg_conn(env, argv[0]);
  bool reset = false;
  napi_get_value_bool(env, argv[1], &reset);
  uint32_t reply = 0;
  if (argc > 2) napi_get_value_uint32(env, argv[2], &reply);
  if (c == NULL) return NULL;
  // A refusal's reply (a TLS alert: a few bytes into a fresh socket's empty send buffer) is sent best
  // effort, then FIN: a short write or an error just closes, as a reset client would have anyway.
  int fd = c->sides[CLIENT].fd;
  if (reply > 0 && reply <= g.hot_len && fd >= 0 && !reset) {
    ssize_t n;
    do n = send(fd, g.hot, reply, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)reply) shutdown(fd, SHUT_WR);
  }
  close_conn(c, reset);
  return NULL;
}

static napi_value js_bytes(napi_env env, napi_callback_info info) {
  ARGS(2);
  conn *c = arg_conn(env, argv[0]);
  int32_t d = arg_i32(env, argv[1]);
  if (c == NULL || d < 0 || d > 2) return num(env, 0);
  // 2: milliseconds since the last byte either way, for status pages (uv_now is the loop's cached clock).
  if (d == 2) return num(env, (double)(uv_now(g.loop) - c->active_at));
  return num(env, c->bytes[d]);
}

/** The client's local end (the address it connected to), for an outbound PROXY header. */
static napi_value js_local(napi_env env, napi_callback_info info) {
  ARGS(1);
  conn *c = arg_conn(env, argv[0]);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (c != NULL && getsockname(c->sides[CLIENT].fd, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof text);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  napi_value arr, str;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &str);
  napi_set_element(env, arr, 0, str);
  napi_set_element(env, arr, 1, num(env, port));
  return arr;
}

static napi_value js_counts(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, num(env, g.live));
  napi_set_element(env, arr, 1, num(env, g.nlisteners));
  return arr;
}

static void cleanup(void *arg) {
  (void)arg;
  if (!g.ready) return;
  for (uint32_t i = 0; i < g.nslots; i++)
    if (g.slots[i]) close_conn(g.slots[i], 0);
  for (int i = 0; i < MAX_LISTENERS; i++)
    if (g.listeners[i]) {
      close(g.listeners[i]->s.fd);
      free(g.listeners[i]);
      g.listeners[i] = NULL;
    }
  while (g.npark > 0) free(g.park_pool[--g.npark]);
  free(g.slots);
  free(g.free_slots);
  uv_close((uv_handle_t *)&g.poll, NULL);
  uv_close((uv_handle_t *)&g.idle_timer, NULL);
  close(g.epfd);
  if (g.reserve_fd >= 0) close(g.reserve_fd);
  g.ready = 0;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"init", js_init},           {"listen", js_listen},
      {"listenerPort", js_listener_port}, {"closeListener", js_close_listener},
      {"pauseAccept", js_pause_accept},   {"connect", js_connect},
      {"relay", js_relay},         {"close", js_close},
      {"bytes", js_bytes},         {"counts", js_counts},
      {"dropBackend", js_drop_backend}, {"local", js_local},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  napi_add_env_cleanup_hook(env, cleanup, NULL);
  return exports;
}
