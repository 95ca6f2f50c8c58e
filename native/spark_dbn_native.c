// Native fast path of ts/math: OpenBLAS sgemm plus the element-wise kernels of
// an RBM step (sigmoid, sampling, random numbers, column sums, updates), written
// as plain loops the compiler vectorises. Every function mirrors one reference
// kernel in ts/math/reference.ts, which the tests compare it with.
//
// Portable: built for baseline x86-64 and linked to scipy-openblas32's OpenBLAS (DYNAMIC_ARCH: its
// kernels are chosen at run time), so one file runs on any x86-64 CPU with glibc >= 2.28. The hot
// loops are cloned for AVX-512, AVX2 and baseline (HOT), picked once at load by the CPU's features.
// Threads: OpenBLAS keeps its own pool for sgemm; the element-wise loops split over pool.h's.
//
// Arguments are Float32Array/Uint32Array views used in place (no copies); the
// TypeScript wrapper (ts/math/native.ts) checks shapes, and this file checks
// them again so that a wrong call is a JS exception, never a stray write.
#include "glibc_floor.h"
#include <node_api.h>
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

// scipy-openblas32 prefixes every symbol (its cblas.h declares them so).
#define cblas_sgemm scipy_cblas_sgemm
#define cblas_sgemv scipy_cblas_sgemv

// Clones of a hot loop for AVX-512, AVX2 and baseline x86-64; the loader picks one (an ifunc). No
// contraction into FMA (-ffp-contract=off): every clone rounds alike, so results do not depend on the CPU.
#define HOT __attribute__((target_clones("avx512f", "avx2", "default")))

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "spark-dbn native: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

#define FAIL(env, ...)                                                     \
  do {                                                                     \
    char msg_[256];                                                        \
    snprintf(msg_, sizeof msg_, __VA_ARGS__);                              \
    napi_throw_range_error((env), NULL, msg_);                             \
    return NULL;                                                           \
  } while (0)

typedef struct {
  void *data;
  size_t length;
  napi_typedarray_type type;
} view_t;

static int get_view(napi_env env, napi_value v, napi_typedarray_type want, view_t *out) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &out->type, &out->length, &out->data, &ab, &off) != napi_ok) return 0;
  return out->type == want;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int get_f64(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}

#define ARGS(n)                                                            \
  size_t argc = (n);                                                       \
  napi_value argv[(n)];                                                    \
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));        \
  if (argc < (n)) FAIL(env, "expected %d arguments, got %zu", (n), argc);

#define F32(i, name)                                                       \
  view_t name;                                                             \
  if (!get_view(env, argv[i], napi_float32_array, &name)) FAIL(env, "argument %d (" #name ") must be a Float32Array", i);

#define INT(i, name)                                                       \
  int64_t name;                                                            \
  if (!get_i64(env, argv[i], &name)) FAIL(env, "argument %d (" #name ") must be an integer", i);

#define NUM(i, name)                                                       \
  double name;                                                             \
  if (!get_f64(env, argv[i], &name)) FAIL(env, "argument %d (" #name ") must be a number", i);

/**
 * OpenBLAS's thread count is one for the process; each caller here has its own (setThreads: a sidecar's
 * training workers run task.cpus each while its main thread runs the executor's cores). It is set to the
 * caller's before each product. Two callers racing only change how a product is split: pool_blas runs
 * every split, so the result is the same.
 */
static void blas_threads_for_caller(void) {
  const int want = pool_threads();
  if (scipy_openblas_get_num_threads() != want) scipy_openblas_set_num_threads(want);
}

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), row-major:
// C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C.
static napi_value js_sgemm(napi_env env, napi_callback_info info) {
  ARGS(13);
  bool ta, tb;
  CHECK(env, napi_get_value_bool(env, argv[0], &ta));
  CHECK(env, napi_get_value_bool(env, argv[1], &tb));
  INT(2, M); INT(3, N); INT(4, K); NUM(5, alpha);
  F32(6, A); INT(7, lda); F32(8, B); INT(9, ldb); NUM(10, beta); F32(11, C); INT(12, ldc);
  if (M < 0 || N < 0 || K < 0) FAIL(env, "sgemm: negative size M=%lld N=%lld K=%lld", (long long)M, (long long)N, (long long)K);
  int64_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
  if (lda < (acols > 1 ? acols : 1) || ldb < (bcols > 1 ? bcols : 1) || ldc < (N > 1 ? N : 1))
    FAIL(env, "sgemm: leading dimension too small");
  if (arows > 0 && (int64_t)A.length < (arows - 1) * lda + acols) FAIL(env, "sgemm: A has %zu elements, too few", A.length);
  if (brows > 0 && (int64_t)B.length < (brows - 1) * ldb + bcols) FAIL(env, "sgemm: B has %zu elements, too few", B.length);
  if (M > 0 && (int64_t)C.length < (M - 1) * ldc + N) FAIL(env, "sgemm: C has %zu elements, too few", C.length);
  if (M == 0 || N == 0) return NULL;
  blas_threads_for_caller();
  if (N == 1) {
    // One output column is a matrix-vector product: sgemm would first pack all of A (a copy of the
    // whole batch for a 784 -> 1 layer); sgemv streams A once. op(B) is a column: element k of it sits
    // at B[k * ldb], or at B[k] when B is stored transposed, (1, K).
    cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, (int)arows, (int)acols, (float)alpha,
                (const float *)A.data, (int)lda, (const float *)B.data, tb ? 1 : (int)ldb, (float)beta,
                (float *)C.data, (int)ldc);
    return NULL;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)K, (float)alpha, (const float *)A.data, (int)lda,
              (const float *)B.data, (int)ldb, (float)beta, (float *)C.data, (int)ldc);
  return NULL;
}

/** Threads for an element-wise loop over n values: 1 below ~64k, else the calling thread's setting. */
static int threads_for(int64_t n) {
  return n < 65536 ? 1 : pool_threads();
}

// sigmoid over 16 floats at a time, with GCC vector extensions: the compiler
// does not auto-vectorise this body (it clones the clamped path), so it is
// written as vector code. exp(-|x|) comes from the Cephes polynomial (about
// 1 ulp), scaled by 2^i in two normal steps so that subnormal results are
// exact down to x = -104; neither branch of sigmoid can overflow; NaN stays NaN.
// 16 lanes: one AVX-512 register where the CPU has it, two AVX2 registers otherwise.
#define VL 16
typedef float v8f __attribute__((vector_size(4 * VL)));
typedef int32_t v8i __attribute__((vector_size(4 * VL)));

static inline __attribute__((always_inline)) v8f splat(float x) { v8f r; for (int i = 0; i < VL; i++) r[i] = x; return r; }
static inline __attribute__((always_inline)) v8f select8(v8i m, v8f a, v8f b) { return (v8f)(((v8i)a & m) | ((v8i)b & ~m)); }

static inline __attribute__((always_inline)) v8f sigmoid8(v8f x) {
  v8f ax = (v8f)((v8i)x & 0x7fffffff);
  v8f xc = -ax;
  xc = select8(xc < splat(-104.0f), splat(-104.0f), xc);
  v8f fx = xc * 1.44269504088896341f + 0.5f;
  v8f fl = __builtin_convertvector(__builtin_convertvector(fx, v8i), v8f);
  fl = select8(fl > fx, fl - 1.0f, fl);  // floor for negatives
  v8i i = __builtin_convertvector(fl, v8i);
  v8f r = xc - fl * 0.693359375f + fl * 2.12194440e-4f;
  v8f r2 = r * r;
  v8f y = splat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  v8i h = i >> 1;  // i in [-150, 0]: both halves are normal exponents
  v8f e = (y * (v8f)((h + 127) << 23)) * (v8f)((i - h + 127) << 23);
  v8f pos = 1.0f / (1.0f + e);
  v8f out = select8(x >= splat(0.0f), pos, e * pos);
  return select8(x != x, x, out);
}

/** row[0..n) = sigmoid(row + b) (b may be NULL); the tail goes through one padded vector. */
static inline __attribute__((always_inline)) void sigmoid_row(float *row, const float *b, int64_t n) {
  int64_t c = 0;
  for (; c + VL <= n; c += VL) {
    v8f x;
    memcpy(&x, row + c, sizeof x);
    if (b) {
      v8f bb;
      memcpy(&bb, b + c, sizeof bb);
      x += bb;
    }
    x = sigmoid8(x);
    memcpy(row + c, &x, sizeof x);
  }
  if (c < n) {
    float t[VL] = {0};
    for (int64_t j = c; j < n; j++) t[j - c] = row[j] + (b ? b[j] : 0.0f);
    v8f x;
    memcpy(&x, t, sizeof x);
    x = sigmoid8(x);
    memcpy(t, &x, sizeof x);
    for (int64_t j = c; j < n; j++) row[j] = t[j - c];
  }
}

typedef struct { float *x; const float *b; int64_t cols; } sigmoid_ctx;
HOT static void sigmoid_rows(void *ctx, int64_t lo, int64_t hi) {
  const sigmoid_ctx *c = ctx;
  for (int64_t r = lo; r < hi; r++) sigmoid_row(c->x + r * c->cols, c->b, c->cols);
}

// sigmoidBias(X, rows, cols, bias|null): X (rows, cols) = sigmoid(X + bias) in place.
static napi_value js_sigmoid_bias(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, X); INT(1, rows); INT(2, cols);
  napi_valuetype bt;
  CHECK(env, napi_typeof(env, argv[3], &bt));
  const float *b = NULL;
  if (bt != napi_null && bt != napi_undefined) {
    F32(3, bias);
    if ((int64_t)bias.length < cols) FAIL(env, "sigmoidBias: bias has %zu elements, need %lld", bias.length, (long long)cols);
    b = (const float *)bias.data;
  }
  if (rows < 0 || cols < 0 || (int64_t)X.length < rows * cols) FAIL(env, "sigmoidBias: X has %zu elements, need %lld", X.length, (long long)(rows * cols));
  sigmoid_ctx c = {(float *)X.data, b, cols};
  pool_for(rows, threads_for(rows * cols), sigmoid_rows, &c);
  return NULL;
}

// addBias(X, rows, cols, bias): X += bias on every row (Gaussian visible means).
static napi_value js_add_bias(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, X); INT(1, rows); INT(2, cols); F32(3, bias);
  if (rows < 0 || cols < 0 || (int64_t)X.length < rows * cols || (int64_t)bias.length < cols) FAIL(env, "addBias: shape mismatch");
  float *x = (float *)X.data;
  const float *b = (const float *)bias.data;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) x[r * cols + c] += b[c];
  return NULL;
}

// xoshiro128** in 16 independent lanes; state is a Uint32Array(64) laid out
// s0[16] s1[16] s2[16] s3[16]. Fills out[0..n) with uniforms in [0, 1) of 24 bits;
// the last group of 16 is generated whole and its tail dropped.
#define LANES 16
static inline uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

HOT static void fill_uniform(uint32_t *st, float *out, int64_t n) {
  uint32_t *s0 = st, *s1 = st + LANES, *s2 = st + 2 * LANES, *s3 = st + 3 * LANES;
  float tmp[LANES];
  for (int64_t i = 0; i < n; i += LANES) {
    for (int l = 0; l < LANES; l++) {
      uint32_t r = rotl32(s1[l] * 5u, 7) * 9u;
      uint32_t t = s1[l] << 9;
      s2[l] ^= s0[l];
      s3[l] ^= s1[l];
      s1[l] ^= s2[l];
      s0[l] ^= s3[l];
      s2[l] ^= t;
      s3[l] = rotl32(s3[l], 11);
      tmp[l] = (float)(r >> 8) * (1.0f / 16777216.0f);
    }
    int64_t m = n - i < LANES ? n - i : LANES;
    memcpy(out + i, tmp, (size_t)m * sizeof(float));
  }
}

static int get_state(napi_env env, napi_value v, uint32_t **st) {
  view_t s;
  if (!get_view(env, v, napi_uint32_array, &s) || s.length < 4 * LANES) return 0;
  *st = (uint32_t *)s.data;
  return 1;
}

// uniform(state, out, n)
static napi_value js_uniform(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t *st;
  if (!get_state(env, argv[0], &st)) FAIL(env, "uniform: state must be a Uint32Array(64)");
  F32(1, out); INT(2, n);
  if (n < 0 || (int64_t)out.length < n) FAIL(env, "uniform: out has %zu elements, need %lld", out.length, (long long)n);
  fill_uniform(st, (float *)out.data, n);
  return NULL;
}

// Counter-based uniforms for sampling (rng.ts counterUniform): value i of a call is a hash of
// (key, i), the key one draw of the xoshiro state. Any thread can make any value, so sampling
// splits across threads and the stream does not depend on how many there are.
static inline uint32_t hash32(uint32_t x) {  // "triple32" (C. Wellons): full avalanche, a bijection
  x ^= x >> 17; x *= 0xed5ad4bbu;
  x ^= x >> 11; x *= 0xac4c1b51u;
  x ^= x >> 15; x *= 0x31848babu;
  x ^= x >> 14;
  return x;
}

/** One step of the 16 lanes; a 32-bit key from lanes 0 and 1 (rng.ts nextKey). */
static uint32_t next_key(uint32_t *st) {
  float u[LANES];
  fill_uniform(st, u, LANES);
  return (uint32_t)(u[0] * 16777216.0f) ^ ((uint32_t)(u[1] * 16777216.0f) << 8);
}

typedef struct { const float *p; float *o; uint32_t key; } bernoulli_ctx;
HOT static void bernoulli_range(void *ctx, int64_t lo, int64_t hi) {
  const bernoulli_ctx *c = ctx;
  for (int64_t i = lo; i < hi; i++) {
    float u = (float)(hash32(c->key + (uint32_t)i * 0x9e3779b9u) >> 8) * (1.0f / 16777216.0f);
    float pi = c->p[i];
    c->o[i] = pi != pi ? pi : (u < pi ? 1.0f : 0.0f);
  }
}

// bernoulli(P, out, n, state): out = u < P ? 1 : 0 with fresh uniforms u; NaN stays NaN.
// P and out may be the same array.
static napi_value js_bernoulli(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, P); F32(1, out); INT(2, n);
  uint32_t *st;
  if (!get_state(env, argv[3], &st)) FAIL(env, "bernoulli: state must be a Uint32Array(64)");
  if (n < 0 || (int64_t)P.length < n || (int64_t)out.length < n) FAIL(env, "bernoulli: arrays shorter than n=%lld", (long long)n);
  if (n > 4294967296LL) FAIL(env, "bernoulli: n=%lld is more than one counter stream (2^32)", (long long)n);
  const float *p = (const float *)P.data;
  float *o = (float *)out.data;
  bernoulli_ctx c = {p, o, next_key(st)};
  pool_for(n, threads_for(n), bernoulli_range, &c);
  return NULL;
}

// colSums(X, rows, cols, out, alpha, beta): out = beta * out + alpha * sum over rows of X.
static napi_value js_col_sums(napi_env env, napi_callback_info info) {
  ARGS(6);
  F32(0, X); INT(1, rows); INT(2, cols); F32(3, out); NUM(4, alpha); NUM(5, beta);
  if (rows < 0 || cols < 0 || (int64_t)X.length < rows * cols || (int64_t)out.length < cols) FAIL(env, "colSums: shape mismatch");
  const float *x = (const float *)X.data;
  float *o = (float *)out.data;
  float a = (float)alpha, bt = (float)beta;
  // Heap, not stack: cols can be as large as the caller's feature count.
  float *acc = calloc((size_t)(cols > 0 ? cols : 1), sizeof(float));
  if (!acc) FAIL(env, "colSums: out of memory for %lld columns", (long long)cols);
  // One thread: threads taking ranges of columns measured slower here (30 ms against 21 ms an
  // epoch of scripts/bench rbm: each reads a strided part of every row); splitting rows would make
  // the sums depend on the thread count.
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) acc[c] += x[r * cols + c];
  for (int64_t c = 0; c < cols; c++) o[c] = (bt == 0.0f ? 0.0f : bt * o[c]) + a * acc[c];
  free(acc);
  return NULL;
}

typedef struct { float *w, *v; const float *g; float l, m, d; } momentum_ctx;
HOT static void momentum_range(void *ctx, int64_t lo, int64_t hi) {
  const momentum_ctx *c = ctx;
  float *w = c->w, *v = c->v;
  const float *g = c->g;
  for (int64_t i = lo; i < hi; i++) {
    float vi = c->m * v[i] + c->l * (g[i] - c->d * w[i]);
    v[i] = vi;
    w[i] += vi;
  }
}

// momentumStep(W, V, G, n, lr, momentum, decay): V = m V + lr (G - decay W); W += V.
static napi_value js_momentum_step(napi_env env, napi_callback_info info) {
  ARGS(7);
  F32(0, W); F32(1, V); F32(2, G); INT(3, n); NUM(4, lr); NUM(5, mom); NUM(6, decay);
  if (n < 0 || (int64_t)W.length < n || (int64_t)V.length < n || (int64_t)G.length < n) FAIL(env, "momentumStep: arrays shorter than n");
  momentum_ctx c = {(float *)W.data, (float *)V.data, (const float *)G.data, (float)lr, (float)mom, (float)decay};
  pool_for(n, threads_for(n), momentum_range, &c);
  return NULL;
}

// firstOutside(X, n, lo, hi): index of the first X[i] not in [lo, hi] (NaN included), or -1.
// Scans blocks with a branch-free flag so the common all-good case vectorises.
static napi_value js_first_outside(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, X); INT(1, n); NUM(2, lo); NUM(3, hi);
  if (n < 0 || (int64_t)X.length < n) FAIL(env, "firstOutside: X has %zu elements, need %lld", X.length, (long long)n);
  const float *x = (const float *)X.data;
  const float l = (float)lo, h = (float)hi;
  int64_t found = -1;
  // One thread, in blocks of 4096: the scan runs at memory speed on one core (a second gained
  // little: 24 -> 34 GB/s idle, nothing on busy cores), and it runs on the sidecar's event loop
  // when a batch arrives, where waiting for a pool thread on cores that the executor's tasks keep
  // busy cost more than the scan (scripts/bench ingest: 0.18 s per 627 MB).
  for (int64_t i = 0; i < n && found < 0; i += 4096) {
    int64_t m = n - i < 4096 ? n - i : 4096;
    int bad = 0;
    for (int64_t j = 0; j < m; j++) bad |= !(x[i + j] >= l && x[i + j] <= h);
    if (bad) {
      for (int64_t j = 0; j < m; j++) {
        if (!(x[i + j] >= l && x[i + j] <= h)) { found = i + j; break; }
      }
    }
  }
  napi_value r;
  CHECK(env, napi_create_int64(env, found, &r));
  return r;
}

typedef struct { const float *x; float *o; const uint32_t *idx; int64_t cols; } gather_ctx;
static void gather_range(void *ctx, int64_t lo, int64_t hi) {
  const gather_ctx *c = ctx;
  for (int64_t r = lo; r < hi; r++) memcpy(c->o + r * c->cols, c->x + (int64_t)c->idx[r] * c->cols, (size_t)c->cols * sizeof(float));
}

// gatherRows(X, cols, idx, from, n, out): out (n, cols) = rows idx[from..from+n) of X (rows, cols).
static napi_value js_gather_rows(napi_env env, napi_callback_info info) {
  ARGS(6);
  F32(0, X); INT(1, cols); INT(3, from); INT(4, n); F32(5, out);
  view_t ix;
  if (!get_view(env, argv[2], napi_uint32_array, &ix)) FAIL(env, "gatherRows: idx must be a Uint32Array");
  if (cols < 1 || n < 0 || from < 0 || from + n > (int64_t)ix.length || (int64_t)out.length < n * cols)
    FAIL(env, "gatherRows: shape mismatch (cols=%lld from=%lld n=%lld)", (long long)cols, (long long)from, (long long)n);
  const int64_t rows = (int64_t)X.length / cols;
  const uint32_t *idx = (const uint32_t *)ix.data + from;
  for (int64_t r = 0; r < n; r++)
    if ((int64_t)idx[r] >= rows) FAIL(env, "gatherRows: index %u is beyond the %lld rows", idx[r], (long long)rows);
  gather_ctx c = {(const float *)X.data, (float *)out.data, idx, cols};
  pool_for(n, threads_for(n * cols), gather_range, &c);
  return NULL;
}

typedef struct { float *w, *v; float d, sc; } decay_ctx;
HOT static void decay_range(void *ctx, int64_t lo, int64_t hi) {
  const decay_ctx *c = ctx;
  float *w = c->w, *v = c->v;
  for (int64_t i = lo; i < hi; i++) {
    float vi = v[i] - c->d * w[i];
    w[i] += vi;
    v[i] = c->sc * vi;
  }
}

// decayAdd(W, V, n, decay, scale): V -= decay * W; W += V; V *= scale. The momentum buffer V
// already holds the step's update; scale is the next step's momentum, applied here, in the pass
// that reads V anyway, so that the next gradient product adds to V with beta = 1 (a beta other
// than 0 or 1 costs BLAS a pass of its own over V).
static napi_value js_decay_add(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, W); F32(1, V); INT(2, n); NUM(3, decay); NUM(4, scale);
  if (n < 0 || (int64_t)W.length < n || (int64_t)V.length < n) FAIL(env, "decayAdd: arrays shorter than n");
  decay_ctx c = {(float *)W.data, (float *)V.data, (float)decay, (float)scale};
  pool_for(n, threads_for(n), decay_range, &c);
  return NULL;
}

// blockMerge(W, D | null, deltas[], weights (Float64Array), n, eta, zeta, nesterov): a merge of replicas'
// updates (rbm/distributed.ts mergeBlock), over the first n elements:
//   G_j = sum_i weights[i] * deltas[i][j], in double, in the updates' order;
//   with D (bmuf): d = eta * D_j + zeta * G_j (double); D_j = d; then W_j += d (classical block momentum),
//                  or W_j += zeta * G_j + eta * d (nesterov != 0: W is the look-ahead);
//   without:       W_j += G_j.
// The same roundings as the reference loop, step by step, so the two give the same bits: no
// contraction into fused multiply-adds (the build's -ffp-contract=off), double sums in the same
// order. In blocks of 512 parameters, each update summed over the block in turn: a vector loop
// over one delta at a time.
#define MERGE_BLOCK 512
#define MERGE_MAX_UPDATES 4096
typedef struct {
  float *w, *m; const float *const *d; const double *wt; int64_t P, n; double eta, zeta; bool nesterov;
} merge_ctx;
HOT static void merge_blocks(void *ctx, int64_t blo, int64_t bhi) {
  const merge_ctx *c = ctx;
  for (int64_t b = blo; b < bhi; b++) {
    const int64_t lo = b * MERGE_BLOCK, len = c->n - lo < MERGE_BLOCK ? c->n - lo : MERGE_BLOCK;
    double g[MERGE_BLOCK];
    for (int64_t k = 0; k < len; k++) g[k] = c->wt[0] * (double)c->d[0][lo + k];
    for (int64_t i = 1; i < c->P; i++) {
      const float *di = c->d[i] + lo;
      const double wi = c->wt[i];
      for (int64_t k = 0; k < len; k++) g[k] += wi * (double)di[k];
    }
    float *wb = c->w + lo;
    if (c->m) {
      float *mb = c->m + lo;
      for (int64_t k = 0; k < len; k++) {
        const double dd = c->eta * (double)mb[k] + c->zeta * g[k];
        mb[k] = (float)dd;
        wb[k] = (float)((double)wb[k] + (c->nesterov ? c->zeta * g[k] + c->eta * dd : dd));
      }
    } else {
      for (int64_t k = 0; k < len; k++) wb[k] = (float)((double)wb[k] + g[k]);
    }
  }
}

static void block_merge(float *w, float *m, const float *const *d, const double *wt, int64_t P, int64_t n,
                        double eta, double zeta, bool nesterov) {
  merge_ctx c = {w, m, d, wt, P, n, eta, zeta, nesterov};
  pool_for((n + MERGE_BLOCK - 1) / MERGE_BLOCK, threads_for(n * P), merge_blocks, &c);
}

static napi_value js_block_merge(napi_env env, napi_callback_info info) {
  ARGS(8);
  F32(0, W); INT(4, n); NUM(5, eta); NUM(6, zeta);
  bool nesterov;
  CHECK(env, napi_get_value_bool(env, argv[7], &nesterov));
  if (n < 0 || (int64_t)W.length < n) FAIL(env, "blockMerge: W has %zu elements, need %lld", W.length, (long long)n);
  napi_valuetype mt;
  CHECK(env, napi_typeof(env, argv[1], &mt));
  float *m = NULL;
  if (mt != napi_null && mt != napi_undefined) {
    F32(1, D);
    if ((int64_t)D.length < n) FAIL(env, "blockMerge: D has %zu elements, need %lld", D.length, (long long)n);
    m = (float *)D.data;
  }
  bool is_array;
  CHECK(env, napi_is_array(env, argv[2], &is_array));
  if (!is_array) FAIL(env, "blockMerge: deltas must be an array of Float32Array");
  uint32_t P;
  CHECK(env, napi_get_array_length(env, argv[2], &P));
  view_t wv;
  if (!get_view(env, argv[3], napi_float64_array, &wv)) FAIL(env, "blockMerge: weights must be a Float64Array");
  if (P < 1 || P > MERGE_MAX_UPDATES || wv.length != P) FAIL(env, "blockMerge: %u deltas, %zu weights", P, wv.length);
  const float *d[MERGE_MAX_UPDATES];
  for (uint32_t i = 0; i < P; i++) {
    napi_value e;
    CHECK(env, napi_get_element(env, argv[2], i, &e));
    view_t dv;
    if (!get_view(env, e, napi_float32_array, &dv)) FAIL(env, "blockMerge: delta %u must be a Float32Array", i);
    if ((int64_t)dv.length < n) FAIL(env, "blockMerge: delta %u has %zu elements, need %lld", i, dv.length, (long long)n);
    d[i] = (const float *)dv.data;
  }
  block_merge((float *)W.data, m, d, (const double *)wv.data, P, n, eta, zeta, nesterov);
  return NULL;
}

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT(0, n);
  if (n < 1 || n > 256) FAIL(env, "setThreads: n must be in [1, 256], got %lld", (long long)n);
  // Per calling thread: each sidecar training worker runs its own replica with task.cpus threads.
  pool_set_threads((int)n);
  return NULL;
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  napi_value r;
  CHECK(env, napi_create_int32(env, pool_threads(), &r));
  return r;
}

static napi_value js_config(napi_env env, napi_callback_info info) {
  napi_value r;
  const char *c = scipy_openblas_get_config();
  CHECK(env, napi_create_string_utf8(env, c ? c : "OpenBLAS", NAPI_AUTO_LENGTH, &r));
  return r;
}

// coreName(): the kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX", "Nehalem", ...).
static napi_value js_core_name(napi_env env, napi_callback_info info) {
  napi_value r;
  const char *c = scipy_openblas_get_corename();
  CHECK(env, napi_create_string_utf8(env, c ? c : "unknown", NAPI_AUTO_LENGTH, &r));
  return r;
}

// simd(): the clone of the hot loops this CPU runs ("avx512f", "avx2" or "baseline").
static napi_value js_simd(napi_env env, napi_callback_info info) {
  napi_value r;
  __builtin_cpu_init();
  const char *s = __builtin_cpu_supports("avx512f") ? "avx512f" : __builtin_cpu_supports("avx2") ? "avx2" : "baseline";
  CHECK(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  pool_default_threads = scipy_openblas_get_num_threads();
  scipy_openblas_set_threads_callback_function(pool_blas);
  napi_property_descriptor props[] = {
    {"sgemm", NULL, js_sgemm, NULL, NULL, NULL, napi_default, NULL},
    {"sigmoidBias", NULL, js_sigmoid_bias, NULL, NULL, NULL, napi_default, NULL},
    {"addBias", NULL, js_add_bias, NULL, NULL, NULL, napi_default, NULL},
    {"uniform", NULL, js_uniform, NULL, NULL, NULL, napi_default, NULL},
    {"bernoulli", NULL, js_bernoulli, NULL, NULL, NULL, napi_default, NULL},
    {"colSums", NULL, js_col_sums, NULL, NULL, NULL, napi_default, NULL},
    {"momentumStep", NULL, js_momentum_step, NULL, NULL, NULL, napi_default, NULL},
    {"firstOutside", NULL, js_first_outside, NULL, NULL, NULL, napi_default, NULL},
    {"decayAdd", NULL, js_decay_add, NULL, NULL, NULL, napi_default, NULL},
    {"gatherRows", NULL, js_gather_rows, NULL, NULL, NULL, napi_default, NULL},
    {"blockMerge", NULL, js_block_merge, NULL, NULL, NULL, napi_default, NULL},
    {"setThreads", NULL, js_set_threads, NULL, NULL, NULL, napi_default, NULL},
    {"getThreads", NULL, js_get_threads, NULL, NULL, NULL, napi_default, NULL},
    {"config", NULL, js_config, NULL, NULL, NULL, napi_default, NULL},
    {"coreName", NULL, js_core_name, NULL, NULL, NULL, napi_default, NULL},
    {"simd", NULL, js_simd, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
