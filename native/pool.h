// One thread pool for OpenBLAS and the element-wise loops, so that the two never fight for the cores
// (OpenBLAS's own pthread pool spinning beside ours made CD-1 slower on two threads than on one).
// pool_for(n, threads, fn, ctx) splits [0, n) into `threads` equal ranges and runs fn(ctx, lo, hi) on
// each, the caller taking the first; results never depend on the split (every loop here is
// element-wise or per block). OpenBLAS hands its jobs to pool_blas, which runs each on a thread of its
// own (its jobs wait on each other). Workers spin briefly after a job, since the next usually follows
// within microseconds, then sleep on a condition variable. One caller at a time owns the pool; another
// thread calling meanwhile runs its loop alone, or its BLAS jobs on threads made for the call.
#ifndef SPARK_DBN_POOL_H
#define SPARK_DBN_POOL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define POOL_MAX 64
#define POOL_SPIN 10000

typedef void (*pool_fn)(void *ctx, int64_t lo, int64_t hi);

// 0: not set on this thread, the process's default: OpenBLAS's count when the addon loaded
// (OPENBLAS_NUM_THREADS, else the cores).
static __thread int pool_tl_threads = 0;
static int pool_default_threads = 1;
static struct {
  pthread_mutex_t owner;  // held by the caller running a loop
  pthread_mutex_t m;
  pthread_cond_t wake;
  int started;            // workers created so far (ids 1..started)
  pool_fn fn;
  void *ctx;
  int64_t n;
  int parts;
  atomic_uint gen;        // bumped for each loop
  atomic_int pending;     // worker ranges not yet done
  unsigned created_at[POOL_MAX];  // gen when each worker was made: the loops it must wait for come after
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER, .m = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void pool_set_threads(int n) { pool_tl_threads = n < 1 ? 1 : n > POOL_MAX ? POOL_MAX : n; }
static inline int pool_threads(void) { return pool_tl_threads > 0 ? pool_tl_threads : pool_default_threads; }

static void pool_range(int part, int parts, int64_t n, int64_t *lo, int64_t *hi) {
  *lo = n * part / parts;
  *hi = n * (part + 1) / parts;
}

static void *pool_worker(void *arg) {
  const int id = (int)(intptr_t)arg;
  unsigned seen = pool.created_at[id];
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && spins < POOL_SPIN) {
      __builtin_ia32_pause();
      spins++;
    }
    if (g == seen) {
      pthread_mutex_lock(&pool.m);
      while ((g = atomic_load(&pool.gen)) == seen) pthread_cond_wait(&pool.wake, &pool.m);
      pthread_mutex_unlock(&pool.m);
    }
    seen = g;
    if (id < pool.parts) {
      int64_t lo, hi;
      pool_range(id, pool.parts, pool.n, &lo, &hi);
      if (lo < hi) pool.fn(pool.ctx, lo, hi);
      atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
  }
  return NULL;
}

/** Owns the pool with `threads - 1` workers started, or returns 0 (busy, or threads cannot be made). */
static int pool_acquire(int threads) {
  if (pthread_mutex_trylock(&pool.owner) != 0) return 0;
  while (pool.started < threads - 1) {
    pthread_t t;
    pool.created_at[pool.started + 1] = atomic_load(&pool.gen);
    if (pthread_create(&t, NULL, pool_worker, (void *)(intptr_t)(pool.started + 1)) != 0) {
      pthread_mutex_unlock(&pool.owner);
      return 0;
    }
    pthread_detach(t);
    pool.started++;
  }
  return 1;
}

/** With the pool owned: runs fn over `threads` ranges of [0, n), one a thread. */
static void pool_dispatch(int64_t n, int threads, pool_fn fn, void *ctx) {
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.parts = threads;
  atomic_store(&pool.pending, threads - 1);
  pthread_mutex_lock(&pool.m);
  atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.m);
  int64_t lo, hi;
  pool_range(0, threads, n, &lo, &hi);
  fn(ctx, lo, hi);
  while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) __builtin_ia32_pause();
}

static void pool_for(int64_t n, int threads, pool_fn fn, void *ctx) {
  if (threads > n) threads = (int)(n > 0 ? n : 1);
  if (threads <= 1 || threads > POOL_MAX || !pool_acquire(threads)) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  pool_dispatch(n, threads, fn, ctx);
  pthread_mutex_unlock(&pool.owner);
}

// OpenBLAS's threading callback: dojob(i, jobdata + i * elsize, dojob_data) for every job i, each
// on its own thread, returning when all are done.
typedef void (*blas_dojob)(int thread_num, void *jobdata, int dojob_data);
typedef struct { blas_dojob dojob; char *jobdata; size_t elsize; int dojob_data; } blas_ctx;
typedef struct { const blas_ctx *c; int i; } blas_one;

static void blas_range(void *ctx, int64_t lo, int64_t hi) {
  const blas_ctx *c = ctx;
  for (int64_t i = lo; i < hi; i++) c->dojob((int)i, c->jobdata + (size_t)i * c->elsize, c->dojob_data);
}

static void *blas_thread(void *arg) {
  const blas_one *o = arg;
  blas_range((void *)o->c, o->i, o->i + 1);
  return NULL;
}

static void pool_blas(int sync, blas_dojob dojob, int numjobs, size_t elsize, void *jobdata, int dojob_data) {
  blas_ctx c = {dojob, jobdata, elsize, dojob_data};
  if (numjobs <= 1) {
    if (numjobs == 1) blas_range(&c, 0, 1);
    return;
  }
  if (numjobs <= POOL_MAX && pool_acquire(numjobs)) {
    pool_dispatch(numjobs, numjobs, blas_range, &c);
    pthread_mutex_unlock(&pool.owner);
    return;
  }
  // The pool is another thread's now: threads of this call's own.
  pthread_t t[POOL_MAX];
  blas_one one[POOL_MAX];
  int made = 0;
  for (int i = 1; i < numjobs && i < POOL_MAX; i++) {
    one[i] = (blas_one){&c, i};
    if (pthread_create(&t[i], NULL, blas_thread, &one[i]) != 0) break;
    made = i;
  }
  if (made == numjobs - 1) blas_range(&c, 0, 1);
  else for (int i = made + 1; i < numjobs; i++) blas_range(&c, i, i + 1);  // cannot happen short of ENOMEM
  for (int i = 1; i <= made; i++) pthread_join(t[i], NULL);
  (void)sync;
}
#endif
