/* Multi-buffer MD5 for aiolightning.
 *
 * MD5 is one long dependency chain, so one stream cannot go faster than about 4.5 cycles
 * per byte (OpenSSL's assembly, ~0.6 GB/s here).  Uploads hash every part to check it
 * against the object store's ETag, several parts at a time, so the work is many
 * independent streams: this module hashes up to 16 of them in lockstep, one per 32-bit
 * lane of an AVX-512 register (the technique of Intel ISA-L's md5_mb and minio/md5-simd).
 * Without AVX-512 at run time every lane falls back to the portable scalar code and
 * ``ACCELERATED`` is false; callers then prefer hashlib.
 *
 * API (see _md5mb.pyi): MD5 objects with update/digest/hexdigest/copy, and
 * update_many(states, buffers), which hashes buffers[i] into states[i] for up to LANES
 * distinct states, with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MD5MB_X86 1
#else
#define MD5MB_X86 0
#endif

#define LANES 16
#define RELEASE_GIL_AT 8192

typedef struct {
    PyObject_HEAD
    uint32_t h[4];
    uint64_t length; /* bytes hashed so far */
    uint8_t buf[64]; /* a partial block, waiting for more bytes */
    Py_ssize_t buflen;
    int busy; /* set while an update runs without the GIL */
} MD5Object;

static int accelerated = 0;

/* The 64 steps of RFC 1321 (function, registers, message word, constant, rotation). */
#define MD5_64_STEPS \
    STEP(MF, a, b, c, d,  0, 0xd76aa478,  7); \
    STEP(MF, d, a, b, c,  1, 0xe8c7b756, 12); \
    STEP(MF, c, d, a, b,  2, 0x242070db, 17); \
    STEP(MF, b, c, d, a,  3, 0xc1bdceee, 22); \
    STEP(MF, a, b, c, d,  4, 0xf57c0faf,  7); \
    STEP(MF, d, a, b, c,  5, 0x4787c62a, 12); \
    STEP(MF, c, d, a, b,  6, 0xa8304613, 17); \
    STEP(MF, b, c, d, a,  7, 0xfd469501, 22); \
    STEP(MF, a, b, c, d,  8, 0x698098d8,  7); \
    STEP(MF, d, a, b, c,  9, 0x8b44f7af, 12); \
    STEP(MF, c, d, a, b, 10, 0xffff5bb1, 17); \
    STEP(MF, b, c, d, a, 11, 0x895cd7be, 22); \
    STEP(MF, a, b, c, d, 12, 0x6b901122,  7); \
    STEP(MF, d, a, b, c, 13, 0xfd987193, 12); \
    STEP(MF, c, d, a, b, 14, 0xa679438e, 17); \
    STEP(MF, b, c, d, a, 15, 0x49b40821, 22); \
    STEP(MG, a, b, c, d,  1, 0xf61e2562,  5); \
    STEP(MG, d, a, b, c,  6, 0xc040b340,  9); \
    STEP(MG, c, d, a, b, 11, 0x265e5a51, 14); \
    STEP(MG, b, c, d, a,  0, 0xe9b6c7aa, 20); \
    STEP(MG, a, b, c, d,  5, 0xd62f105d,  5); \
    STEP(MG, d, a, b, c, 10, 0x02441453,  9); \
    STEP(MG, c, d, a, b, 15, 0xd8a1e681, 14); \
    STEP(MG, b, c, d, a,  4, 0xe7d3fbc8, 20); \
    STEP(MG, a, b, c, d,  9, 0x21e1cde6,  5); \
    STEP(MG, d, a, b, c, 14, 0xc33707d6,  9); \
    STEP(MG, c, d, a, b,  3, 0xf4d50d87, 14); \
    STEP(MG, b, c, d, a,  8, 0x455a14ed, 20); \
    STEP(MG, a, b, c, d, 13, 0xa9e3e905,  5); \
    STEP(MG, d, a, b, c,  2, 0xfcefa3f8,  9); \
    STEP(MG, c, d, a, b,  7, 0x676f02d9, 14); \
    STEP(MG, b, c, d, a, 12, 0x8d2a4c8a, 20); \
    STEP(MH, a, b, c, d,  5, 0xfffa3942,  4); \
    STEP(MH, d, a, b, c,  8, 0x8771f681, 11); \
    STEP(MH, c, d, a, b, 11, 0x6d9d6122, 16); \
    STEP(MH, b, c, d, a, 14, 0xfde5380c, 23); \
    STEP(MH, a, b, c, d,  1, 0xa4beea44,  4); \
    STEP(MH, d, a, b, c,  4, 0x4bdecfa9, 11); \
    STEP(MH, c, d, a, b,  7, 0xf6bb4b60, 16); \
    STEP(MH, b, c, d, a, 10, 0xbebfbc70, 23); \
    STEP(MH, a, b, c, d, 13, 0x289b7ec6,  4); \
    STEP(MH, d, a, b, c,  0, 0xeaa127fa, 11); \
    STEP(MH, c, d, a, b,  3, 0xd4ef3085, 16); \
    STEP(MH, b, c, d, a,  6, 0x04881d05, 23); \
    STEP(MH, a, b, c, d,  9, 0xd9d4d039,  4); \
    STEP(MH, d, a, b, c, 12, 0xe6db99e5, 11); \
    STEP(MH, c, d, a, b, 15, 0x1fa27cf8, 16); \
    STEP(MH, b, c, d, a,  2, 0xc4ac5665, 23); \
    STEP(MI, a, b, c, d,  0, 0xf4292244,  6); \
    STEP(MI, d, a, b, c,  7, 0x432aff97, 10); \
    STEP(MI, c, d, a, b, 14, 0xab9423a7, 15); \
    STEP(MI, b, c, d, a,  5, 0xfc93a039, 21); \
    STEP(MI, a, b, c, d, 12, 0x655b59c3,  6); \
    STEP(MI, d, a, b, c,  3, 0x8f0ccc92, 10); \
    STEP(MI, c, d, a, b, 10, 0xffeff47d, 15); \
    STEP(MI, b, c, d, a,  1, 0x85845dd1, 21); \
    STEP(MI, a, b, c, d,  8, 0x6fa87e4f,  6); \
    STEP(MI, d, a, b, c, 15, 0xfe2ce6e0, 10); \
    STEP(MI, c, d, a, b,  6, 0xa3014314, 15); \
    STEP(MI, b, c, d, a, 13, 0x4e0811a1, 21); \
    STEP(MI, a, b, c, d,  4, 0xf7537e82,  6); \
    STEP(MI, d, a, b, c, 11, 0xbd3af235, 10); \
    STEP(MI, c, d, a, b,  2, 0x2ad7d2bb, 15); \
    STEP(MI, b, c, d, a,  9, 0xeb86d391, 21);

/* ---------------------------------------------------------------- portable scalar code */

#define MF(b, c, d) (((b) & (c)) | (~(b) & (d)))
#define MG(b, c, d) (((b) & (d)) | ((c) & ~(d)))
#define MH(b, c, d) ((b) ^ (c) ^ (d))
#define MI(b, c, d) ((c) ^ ((b) | ~(d)))
#define ROL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define STEP(f, a, b, c, d, g, t, s) a = b + ROL(a + f(b, c, d) + x[g] + (uint32_t)(t), s)

static void
md5_blocks_scalar(uint32_t h[4], const uint8_t *p, size_t nblocks)
{
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (; nblocks; nblocks--, p += 64) {
        uint32_t x[16];
        for (int i = 0; i < 16; i++) {
            const uint8_t *q = p + 4 * i;
            x[i] = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) |
                   ((uint32_t)q[3] << 24);
        }
        uint32_t aa = a, bb = b, cc = c, dd = d;
        MD5_64_STEPS
        a += aa;
        b += bb;
        c += cc;
        d += dd;
    }
    h[0] = a;
    h[1] = b;
    h[2] = c;
    h[3] = d;
}

#undef MF
#undef MG
#undef MH
#undef MI
#undef STEP

/* ------------------------------------------------------------ lanes with AVX-512F(+VL) */

#if MD5MB_X86
/* A kernel hashes m blocks in every lane: state words in sa..sd, each lane's next block at
 * p[l], advanced by inc[l] (64, or 0 for a lane parked on a block of zeros). */
typedef void (*lanes_kernel)(uint32_t *sa, uint32_t *sb, uint32_t *sc, uint32_t *sd,
                             uint64_t *p, const uint64_t *inc, size_t m);

/* vpternlogd truth tables for the four MD5 functions of (b, c, d) */
#define TT_F 0xCA
#define TT_G 0xE4
#define TT_H 0x96
#define TT_I 0x39
#define MF TT_F
#define MG TT_G
#define MH TT_H
#define MI TT_I

/* a = b + rol(a + x[g] + t + f(b, c, d), s), with f last: the chain through b is
 * ternlog, add, rotate, add */
#define STEP(f, a, b, c, d, g, t, s)                                                       \
    a = ADD(b, ROLV(ADD(ADD(a, ADD(x[g], SET1((int)(t)))), TERN(b, c, d, f)), s))

#define ADD _mm512_add_epi32
#define ROLV _mm512_rol_epi32
#define TERN _mm512_ternarylogic_epi32
#define SET1 _mm512_set1_epi32

/* 16 lanes in zmm registers; each message word is two 8-lane gathers */
__attribute__((target("avx512f"))) static void
kernel_x16(uint32_t *sa, uint32_t *sb, uint32_t *sc, uint32_t *sd, uint64_t *p,
           const uint64_t *inc, size_t m)
{
    __m512i a = _mm512_load_si512(sa), b = _mm512_load_si512(sb);
    __m512i c = _mm512_load_si512(sc), d = _mm512_load_si512(sd);
    __m512i p0 = _mm512_load_si512(p), p1 = _mm512_load_si512(p + 8);
    const __m512i i0 = _mm512_load_si512(inc), i1 = _mm512_load_si512(inc + 8);
    for (size_t k = 0; k < m; k++) {
        __m512i x[16];
        for (int j = 0; j < 16; j++) {
            /* word j of each lane's block: 64-bit addresses in p0/p1, base offset 4j */
            const void *base = (const void *)(uintptr_t)(4 * j);
            __m256i lo = _mm512_i64gather_epi32(p0, base, 1);
            __m256i hi = _mm512_i64gather_epi32(p1, base, 1);
            x[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
        __m512i aa = a, bb = b, cc = c, dd = d;
        MD5_64_STEPS
        a = ADD(a, aa);
        b = ADD(b, bb);
        c = ADD(c, cc);
        d = ADD(d, dd);
        p0 = _mm512_add_epi64(p0, i0);
        p1 = _mm512_add_epi64(p1, i1);
    }
    _mm512_store_si512(sa, a);
    _mm512_store_si512(sb, b);
    _mm512_store_si512(sc, c);
    _mm512_store_si512(sd, d);
    _mm512_store_si512(p, p0);
    _mm512_store_si512(p + 8, p1);
}

#undef ADD
#undef ROLV
#undef TERN
#undef SET1
#define ADD _mm256_add_epi32
#define ROLV _mm256_rol_epi32
#define TERN _mm256_ternarylogic_epi32
#define SET1 _mm256_set1_epi32

/* 8 lanes in ymm registers (one gather per word, and ymm ops issue on three ports, zmm
 * on two): the same per-block latency as 16 lanes for half the work, so when no more than
 * 8 streams are queued this is nearly twice as cheap as kernel_x16. */
__attribute__((target("avx512f,avx512vl"))) static void
kernel_x8(uint32_t *sa, uint32_t *sb, uint32_t *sc, uint32_t *sd, uint64_t *p,
          const uint64_t *inc, size_t m)
{
    __m256i a = _mm256_load_si256((const __m256i *)sa), b = _mm256_load_si256((const __m256i *)sb);
    __m256i c = _mm256_load_si256((const __m256i *)sc), d = _mm256_load_si256((const __m256i *)sd);
    __m512i p0 = _mm512_load_si512(p);
    const __m512i i0 = _mm512_load_si512(inc);
    for (size_t k = 0; k < m; k++) {
        __m256i x[16];
        for (int j = 0; j < 16; j++) {
            x[j] = _mm512_i64gather_epi32(p0, (const void *)(uintptr_t)(4 * j), 1);
        }
        __m256i aa = a, bb = b, cc = c, dd = d;
        MD5_64_STEPS
        a = ADD(a, aa);
        b = ADD(b, bb);
        c = ADD(c, cc);
        d = ADD(d, dd);
        p0 = _mm512_add_epi64(p0, i0);
    }
    _mm256_store_si256((__m256i *)sa, a);
    _mm256_store_si256((__m256i *)sb, b);
    _mm256_store_si256((__m256i *)sc, c);
    _mm256_store_si256((__m256i *)sd, d);
    _mm512_store_si512(p, p0);
}

#undef ADD
#undef ROLV
#undef TERN
#undef SET1
#undef MF
#undef MG
#undef MH
#undef MI
#undef STEP

static const uint8_t zero_block[64] __attribute__((aligned(64))) = {0};

/* Hash nblocks[l] whole blocks at ptrs[l] into states[l] for the first `width` lanes
 * (states[l] == NULL: unused). Lanes run in lockstep, m blocks at a time, m being the
 * fewest left in any lane; a lane that runs out is parked on a block of zeros (its result
 * already saved) until the others are done. */
static void
md5_lanes(uint32_t *states[], const uint8_t *ptrs[], const size_t nblocks[], int width,
          lanes_kernel kernel)
{
    uint32_t sa[LANES] __attribute__((aligned(64)));
    uint32_t sb[LANES] __attribute__((aligned(64)));
    uint32_t sc[LANES] __attribute__((aligned(64)));
    uint32_t sd[LANES] __attribute__((aligned(64)));
    uint64_t p[LANES] __attribute__((aligned(64)));
    uint64_t inc[LANES] __attribute__((aligned(64)));
    size_t left[LANES];

    for (int l = 0; l < width; l++) {
        if (states[l] != NULL && nblocks[l] > 0) {
            sa[l] = states[l][0];
            sb[l] = states[l][1];
            sc[l] = states[l][2];
            sd[l] = states[l][3];
            p[l] = (uint64_t)(uintptr_t)ptrs[l];
            inc[l] = 64;
            left[l] = nblocks[l];
        }
        else {
            sa[l] = sb[l] = sc[l] = sd[l] = 0;
            p[l] = (uint64_t)(uintptr_t)zero_block;
            inc[l] = 0;
            left[l] = 0;
        }
    }
    for (;;) {
        size_t m = 0;
        for (int l = 0; l < width; l++) {
            if (left[l] && (m == 0 || left[l] < m)) {
                m = left[l];
            }
        }
        if (m == 0) {
            break;
        }
        kernel(sa, sb, sc, sd, p, inc, m);
        for (int l = 0; l < width; l++) {
            if (left[l] == 0) {
                continue;
            }
            left[l] -= m;
            if (left[l] == 0) {
                states[l][0] = sa[l];
                states[l][1] = sb[l];
                states[l][2] = sc[l];
                states[l][3] = sd[l];
                p[l] = (uint64_t)(uintptr_t)zero_block;
                inc[l] = 0;
            }
        }
    }
}
#endif /* MD5MB_X86 */

/* ------------------------------------------------------------------------ the driver */

/* Hash data[i] (len[i] bytes) into objs[i] for n <= LANES distinct objects.
 * Runs without the GIL: touches only the objects' C fields and the buffers. */
static void
hash_lanes(MD5Object *objs[], const uint8_t *data[], const Py_ssize_t len[], int n)
{
    uint32_t *states[LANES] = {0};
    const uint8_t *ptrs[LANES] = {0};
    size_t nblocks[LANES] = {0};
    int whole = 0;

    for (int i = 0; i < n; i++) {
        MD5Object *o = objs[i];
        const uint8_t *q = data[i];
        Py_ssize_t left = len[i];
        o->length += (uint64_t)left;
        if (o->buflen > 0) { /* finish the partial block first */
            Py_ssize_t take = 64 - o->buflen;
            if (take > left) {
                take = left;
            }
            memcpy(o->buf + o->buflen, q, (size_t)take);
            o->buflen += take;
            q += take;
            left -= take;
            if (o->buflen == 64) {
                md5_blocks_scalar(o->h, o->buf, 1);
                o->buflen = 0;
            }
        }
        states[i] = o->h;
        ptrs[i] = q;
        nblocks[i] = (size_t)(left / 64);
        whole += nblocks[i] > 0;
        Py_ssize_t rest = left % 64;
        if (rest) {
            memcpy(o->buf, q + (left - rest), (size_t)rest);
            o->buflen = rest;
        }
    }
    if (whole == 0) {
        return;
    }
#if MD5MB_X86
    if (accelerated) {
        if (whole > 8) {
            md5_lanes(states, ptrs, nblocks, LANES, kernel_x16);
            return;
        }
        /* no more than 8 lanes have whole blocks: pack them into the 8-lane kernel */
        uint32_t *st8[8] = {0};
        const uint8_t *pt8[8] = {0};
        size_t nb8[8] = {0};
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (nblocks[i] > 0) {
                st8[k] = states[i];
                pt8[k] = ptrs[i];
                nb8[k] = nblocks[i];
                k++;
            }
        }
        md5_lanes(st8, pt8, nb8, 8, kernel_x8);
        return;
    }
#endif
    for (int i = 0; i < n; i++) {
        md5_blocks_scalar(states[i], ptrs[i], nblocks[i]);
    }
}

static void
md5_final(const MD5Object *o, uint8_t out[16])
{
    uint32_t h[4] = {o->h[0], o->h[1], o->h[2], o->h[3]};
    uint8_t block[128] = {0};
    memcpy(block, o->buf, (size_t)o->buflen);
    block[o->buflen] = 0x80;
    size_t total = o->buflen < 56 ? 64 : 128;
    uint64_t bits = o->length * 8;
    for (int i = 0; i < 8; i++) {
        block[total - 8 + i] = (uint8_t)(bits >> (8 * i));
    }
    md5_blocks_scalar(h, block, total / 64);
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 4; k++) {
            out[4 * i + k] = (uint8_t)(h[i] >> (8 * k));
        }
    }
}

/* ------------------------------------------------------------------- the Python type */

static PyTypeObject MD5Type;

static int
claim(MD5Object *o)
{
    if (o->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this MD5 object is being updated in another thread (or is listed twice)");
        return -1;
    }
    o->busy = 1;
    return 0;
}

static MD5Object *
md5_new_object(void)
{
    MD5Object *o = PyObject_New(MD5Object, &MD5Type);
    if (o == NULL) {
        return NULL;
    }
    memcpy(o->h, (const uint32_t[4]){0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u},
           sizeof o->h);
    o->length = 0;
    o->buflen = 0;
    o->busy = 0;
    return o;
}

static PyObject *MD5_update(MD5Object *self, PyObject *arg);

static PyObject *
MD5_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", NULL};
    PyObject *data = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:MD5", kwlist, &data)) {
        return NULL;
    }
    MD5Object *o = md5_new_object();
    if (o == NULL) {
        return NULL;
    }
    if (data != NULL) {
        PyObject *r = MD5_update(o, data);
        if (r == NULL) {
            Py_DECREF(o);
            return NULL;
        }
        Py_DECREF(r);
    }
    return (PyObject *)o;
}

static void
MD5_dealloc(MD5Object *self)
{
    PyObject_Free(self);
}

static PyObject *
MD5_update(MD5Object *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (claim(self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    MD5Object *objs[1] = {self};
    const uint8_t *data[1] = {(const uint8_t *)view.buf};
    Py_ssize_t len[1] = {view.len};
    if (view.len >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        hash_lanes(objs, data, len, 1);
        Py_END_ALLOW_THREADS
    }
    else {
        hash_lanes(objs, data, len, 1);
    }
    self->busy = 0;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
MD5_digest(MD5Object *self, PyObject *Py_UNUSED(ignored))
{
    uint8_t out[16];
    md5_final(self, out);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *
MD5_hexdigest(MD5Object *self, PyObject *Py_UNUSED(ignored))
{
    static const char hex[] = "0123456789abcdef";
    uint8_t out[16];
    char text[32];
    md5_final(self, out);
    for (int i = 0; i < 16; i++) {
        text[2 * i] = hex[out[i] >> 4];
        text[2 * i + 1] = hex[out[i] & 15];
    }
    return PyUnicode_FromStringAndSize(text, 32);
}

static PyObject *
MD5_copy(MD5Object *self, PyObject *Py_UNUSED(ignored))
{
    MD5Object *o = md5_new_object();
    if (o == NULL) {
        return NULL;
    }
    memcpy(o->h, self->h, sizeof o->h);
    memcpy(o->buf, self->buf, sizeof o->buf);
    o->length = self->length;
    o->buflen = self->buflen;
    return (PyObject *)o;
}

static PyObject *
MD5_get_name(MD5Object *self, void *closure)
{
    return PyUnicode_FromString("md5");
}

static PyObject *
MD5_get_digest_size(MD5Object *self, void *closure)
{
    return PyLong_FromLong(16);
}

static PyObject *
MD5_get_block_size(MD5Object *self, void *closure)
{
    return PyLong_FromLong(64);
}

static PyMethodDef MD5_methods[] = {
    {"update", (PyCFunction)MD5_update, METH_O, "Hash more bytes."},
    {"digest", (PyCFunction)MD5_digest, METH_NOARGS, "The digest of the bytes so far."},
    {"hexdigest", (PyCFunction)MD5_hexdigest, METH_NOARGS, "The digest, in hex."},
    {"copy", (PyCFunction)MD5_copy, METH_NOARGS, "A copy of this hash object."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef MD5_getset[] = {
    {"name", (getter)MD5_get_name, NULL, NULL, NULL},
    {"digest_size", (getter)MD5_get_digest_size, NULL, NULL, NULL},
    {"block_size", (getter)MD5_get_block_size, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MD5Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aiolightning._md5mb.MD5",
    .tp_basicsize = sizeof(MD5Object),
    .tp_dealloc = (destructor)MD5_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An MD5 hash object that update_many() can advance together with others.",
    .tp_methods = MD5_methods,
    .tp_getset = MD5_getset,
    .tp_new = MD5_tp_new,
};

/* ----------------------------------------------------------------------- update_many */

static PyObject *
md5mb_update_many(PyObject *module, PyObject *args)
{
    PyObject *states, *buffers;
    if (!PyArg_ParseTuple(args, "OO:update_many", &states, &buffers)) {
        return NULL;
    }
    PyObject *sseq = PySequence_Fast(states, "states must be a sequence of MD5 objects");
    if (sseq == NULL) {
        return NULL;
    }
    PyObject *bseq = PySequence_Fast(buffers, "buffers must be a sequence of bytes-like objects");
    if (bseq == NULL) {
        Py_DECREF(sseq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sseq);
    MD5Object *objs[LANES];
    Py_buffer views[LANES];
    const uint8_t *data[LANES];
    Py_ssize_t len[LANES];
    int got = 0, claimed = 0;
    PyObject *result = NULL;
    Py_ssize_t total = 0;

    if (n != PySequence_Fast_GET_SIZE(bseq)) {
        PyErr_SetString(PyExc_ValueError, "states and buffers differ in length");
        goto done;
    }
    if (n > LANES) {
        PyErr_Format(PyExc_ValueError, "at most %d states at a time, got %zd", LANES, n);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(sseq, i);
        if (!PyObject_TypeCheck(s, &MD5Type)) {
            PyErr_Format(PyExc_TypeError, "states[%zd] is a %.100s, not an MD5 object", i,
                         Py_TYPE(s)->tp_name);
            goto done;
        }
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(bseq, i), &views[i], PyBUF_SIMPLE) < 0) {
            goto done;
        }
        got++;
        objs[i] = (MD5Object *)s;
        if (claim(objs[i]) < 0) {
            goto done;
        }
        claimed++;
        data[i] = (const uint8_t *)views[i].buf;
        len[i] = views[i].len;
        total += views[i].len;
    }
    if (total >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        hash_lanes(objs, data, len, (int)n);
        Py_END_ALLOW_THREADS
    }
    else {
        hash_lanes(objs, data, len, (int)n);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < claimed; i++) {
        objs[i]->busy = 0;
    }
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&views[i]);
    }
    Py_DECREF(sseq);
    Py_DECREF(bseq);
    return result;
}

static PyMethodDef module_methods[] = {
    {"update_many", md5mb_update_many, METH_VARARGS,
     "update_many(states, buffers): hash buffers[i] into states[i], all lanes at once."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef md5mb_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiolightning._md5mb",
    .m_doc = "Multi-buffer MD5: many independent streams hashed together (AVX-512).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__md5mb(void)
{
#if MD5MB_X86
    __builtin_cpu_init();
    accelerated = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
    const char *off = getenv("AIOLIGHTNING_MD5MB_SCALAR");
    if (off != NULL && off[0] != '\0' && off[0] != '0') {
        accelerated = 0;
    }
#endif
    if (PyType_Ready(&MD5Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&md5mb_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&MD5Type);
    if (PyModule_AddObject(m, "MD5", (PyObject *)&MD5Type) < 0 ||
        PyModule_AddIntConstant(m, "LANES", accelerated ? LANES : 1) < 0 ||
        PyModule_AddObject(m, "ACCELERATED", PyBool_FromLong(accelerated)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
