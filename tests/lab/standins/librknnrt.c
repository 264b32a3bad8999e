/*
 * RKDEPLOY LAB STAND-IN for Rockchip's librknnrt.so. It is NOT the Rockchip runtime, and there is no NPU.
 *
 * It exists so that the lab's boards (and Rockchip's real rknn_server, which dlopens /usr/lib/librknnrt.so)
 * have a runtime that implements the public C API of rknn_api.h with an *emulated* NPU:
 *
 *  - the exact version string the real library carries (`librknnrt version: X (hash@date)`, -DRT_VERSION),
 *    which rkdeploy and rknn_server read with `strings`;
 *  - rknn_init parses the .rknn model (docs/rknn-formats.md): magic, format (1: 24-byte header, others 64),
 *    the FlatBuffer (per-tensor dtype code, name, scale, zero point, the model's I/O JSON) and the JSON
 *    metadata (inputs/outputs through "graph", target_platform, toolkit "version");
 *  - it refuses a model of another SoC family (`This rknn model is for rk3588, but current platform is
 *    rk3566`, board SoC from the device tree) and a model whose toolkit version (X.Y.Z) is newer than this
 *    runtime's (`RKNN model version is 2.5.0, but current librknnrt.so is support model version <= 2.3.2`:
 *    the stand-in's simplification; the real runtime compares its own model-format numbers);
 *  - the "NPU" run time is deterministic and really spent (usleep):
 *        run_us = (200 + flatbuffer_bytes / 64 + output_elements / 256) / cores,   capped at 2 s,
 *    where cores is the number of NPU cores of the core mask (AUTO: 1, ALL: every core of the SoC);
 *  - outputs are deterministic: byte j of output i is (j * 31 + i * 7 + input_checksum) & 0x7f, converted
 *    to float with the tensor's zero point and scale when want_float is set;
 *  - every call is logged with its arguments to the file named by RKNN_STANDIN_LOG (appended) when set;
 *    unknown queries and unexpected calls always go to stderr as `W RKNN: [rkdeploy stand-in] ...`.
 *
 * The structures below are this file's own declarations of the layouts rknn_api.h documents (checked with
 * static assertions on size and offsets); Rockchip's header is not copied. Only libc is used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#ifndef RT_VERSION
#error "RT_VERSION must be defined, e.g. -DRT_VERSION='\"2.3.2 (429f97ae6b@2025-04-09T09:09:27)\"'"
#endif

__attribute__((used)) const char rknn_rt_version_string[] = "librknnrt version: " RT_VERSION;
__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not Rockchip's librknnrt.so, an emulated NPU, built by tests/lab/sdk.py";

#define TAG "[rkdeploy stand-in] "
#define DEFAULT_DRIVER "0.9.8"

#include "rknn_standin_types.h"

/* ---- logging ------------------------------------------------------------------------------------------ */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void logv(int to_stderr, const char *fmt, va_list ap) {
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *path = getenv("RKNN_STANDIN_LOG");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            fprintf(f, "%ld.%06ld pid=%d %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid(), line);
            fclose(f);
        }
    }
    if (to_stderr) fprintf(stderr, "W RKNN: " TAG "%s\n", line);
}
static void logc(const char *fmt, ...) { va_list ap; va_start(ap, fmt); logv(0, fmt, ap); va_end(ap); }
static void warn(const char *fmt, ...) { va_list ap; va_start(ap, fmt); logv(1, fmt, ap); va_end(ap); }
static void err_msg(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "E RKNN: " TAG "%s\n", line);
    logc("error: %s", line);
}

/* ---- a small JSON reader (DOM over the metadata; depth and size bounded, never trusts the input) ------- */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct { int type; const char *s; size_t len; double num; int first, next; const char *key; size_t klen; } jnode;
typedef struct { const char *p, *end; jnode *n; int count, cap, bad; } jparser;

static void jws(jparser *j) { while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++; }
static int jnew(jparser *j, int type) {
    if (j->count == j->cap) {
        int cap = j->cap ? j->cap * 2 : 256;
        if (cap > (1 << 22)) { j->bad = 1; return -1; }
        jnode *n = realloc(j->n, sizeof(jnode) * cap);
        if (!n) { j->bad = 1; return -1; }
        j->n = n; j->cap = cap;
    }
    memset(&j->n[j->count], 0, sizeof(jnode));
    j->n[j->count].type = type; j->n[j->count].first = j->n[j->count].next = -1;
    return j->count++;
}
static int jstring(jparser *j, const char **s, size_t *len) {
    if (j->p >= j->end || *j->p != '"') return -1;
    const char *start = ++j->p;
    while (j->p < j->end && *j->p != '"') { if (*j->p == '\\') j->p++; j->p++; }
    if (j->p >= j->end) return -1;
    *s = start; *len = (size_t)(j->p - start); j->p++;
    return 0;
}
static int jvalue(jparser *j, int depth) {
    if (depth > 64 || j->bad) { j->bad = 1; return -1; }
    jws(j);
    if (j->p >= j->end) { j->bad = 1; return -1; }
    char c = *j->p;
    int id;
    if (c == '{' || c == '[') {
        id = jnew(j, c == '{' ? J_OBJ : J_ARR);
        if (id < 0) return -1;
        j->p++;
        int last = -1;
        jws(j);
        if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) { j->p++; return id; }
        for (;;) {
            const char *k = NULL; size_t kl = 0;
            jws(j);
            if (c == '{') {
                if (jstring(j, &k, &kl) < 0) { j->bad = 1; return -1; }
                jws(j);
                if (j->p >= j->end || *j->p != ':') { j->bad = 1; return -1; }
                j->p++;
            }
            int child = jvalue(j, depth + 1);
            if (child < 0) return -1;
            j->n[child].key = k; j->n[child].klen = kl;
            if (last < 0) j->n[id].first = child; else j->n[last].next = child;
            last = child;
            jws(j);
            if (j->p < j->end && *j->p == ',') { j->p++; continue; }
            if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) { j->p++; return id; }
            j->bad = 1; return -1;
        }
    }
    if (c == '"') {
        id = jnew(j, J_STR);
        if (id < 0) return -1;
        const char *s; size_t l;
        if (jstring(j, &s, &l) < 0) { j->bad = 1; return -1; }
        j->n[id].s = s; j->n[id].len = l;
        return id;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64]; size_t l = 0;
        while (j->p < j->end && l < sizeof buf - 1 && strchr("+-0123456789.eE", *j->p)) buf[l++] = *j->p++;
        buf[l] = 0;
        id = jnew(j, J_NUM);
        if (id < 0) return -1;
        j->n[id].num = strtod(buf, NULL);
        return id;
    }
    static const char *words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t l = strlen(words[w]);
        if ((size_t)(j->end - j->p) >= l && !memcmp(j->p, words[w], l)) {
            j->p += l;
            id = jnew(j, w < 2 ? J_BOOL : J_NULL);
            if (id >= 0) j->n[id].num = (w == 0);
            return id;
        }
    }
    j->bad = 1;
    return -1;
}
static int jparse(jparser *j, const char *s, size_t len) {
    memset(j, 0, sizeof *j);
    j->p = s; j->end = s + len;
    int root = jvalue(j, 0);
    return j->bad ? -1 : root;
}
static int jget(const jparser *j, int obj, const char *key) {
    if (obj < 0 || j->n[obj].type != J_OBJ) return -1;
    size_t kl = strlen(key);
    for (int c = j->n[obj].first; c >= 0; c = j->n[c].next)
        if (j->n[c].klen == kl && !memcmp(j->n[c].key, key, kl)) return c;
    return -1;
}
static int jindex(const jparser *j, int arr, int i) {
    if (arr < 0 || j->n[arr].type != J_ARR) return -1;
    for (int c = j->n[arr].first; c >= 0; c = j->n[c].next) if (i-- == 0) return c;
    return -1;
}
static int jcount(const jparser *j, int arr) {
    int k = 0;
    if (arr >= 0 && (j->n[arr].type == J_ARR || j->n[arr].type == J_OBJ))
        for (int c = j->n[arr].first; c >= 0; c = j->n[c].next) k++;
    return k;
}
/* copy a JSON string (escapes reduced: \" \\ \/ kept as the character, \uXXXX as '?') */
static void jcopy(const jparser *j, int id, char *out, size_t cap) {
    size_t o = 0;
    if (cap == 0) return;
    if (id >= 0 && j->n[id].type == J_STR) {
        const char *s = j->n[id].s;
        for (size_t i = 0; i < j->n[id].len && o + 1 < cap; i++) {
            char c = s[i];
            if (c == '\\' && i + 1 < j->n[id].len) {
                c = s[++i];
                if (c == 'n') c = '\n'; else if (c == 't') c = '\t';
                else if (c == 'u') { c = '?'; i += 4; }
            }
            out[o++] = c;
        }
    }
    out[o] = 0;
}
static long jint(const jparser *j, int id, long dflt) {
    return (id >= 0 && j->n[id].type == J_NUM) ? (long)j->n[id].num : dflt;
}

/* ---- a bounds-checked FlatBuffer reader (no schema: fields by position, docs/rknn-formats.md) --------- */
typedef struct { const uint8_t *b; size_t len; size_t pos; size_t vt; unsigned nslots; } fbtab;
static int fb_ok(const fbtab *t, size_t at, size_t n) { return at <= t->len && n <= t->len - at; }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static int fb_table(const uint8_t *b, size_t len, size_t pos, fbtab *t) {
    t->b = b; t->len = len; t->pos = pos;
    if (!fb_ok(t, pos, 4)) return -1;
    int64_t vt = (int64_t)pos - (int32_t)rd32(b + pos);
    if (vt < 0 || !fb_ok(t, (size_t)vt, 4)) return -1;
    unsigned vlen = rd16(b + vt);
    if (vlen < 4 || vlen % 2 || !fb_ok(t, (size_t)vt, vlen)) return -1;
    t->vt = (size_t)vt; t->nslots = vlen / 2 - 2;
    return 0;
}
static size_t fb_field(const fbtab *t, unsigned i) {
    if (i >= t->nslots) return 0;
    unsigned o = rd16(t->b + t->vt + 4 + 2 * i);
    return o ? t->pos + o : 0;
}
static size_t fb_target(const fbtab *t, unsigned i) {   /* 0: absent or out of range */
    size_t at = fb_field(t, i);
    if (!at || !fb_ok(t, at, 4)) return 0;
    size_t to = at + rd32(t->b + at);
    return fb_ok(t, to, 4) ? to : 0;
}
static const char *fb_string(const fbtab *t, unsigned i, size_t *n) {
    size_t at = fb_target(t, i);
    if (!at) return NULL;
    size_t l = rd32(t->b + at);
    if (!fb_ok(t, at + 4, l + 1) || t->b[at + 4 + l] != 0) return NULL;
    *n = l;
    return (const char *)t->b + at + 4;
}
static const uint8_t *fb_vector(const fbtab *t, unsigned i, size_t elem, uint32_t *n) {
    size_t at = fb_target(t, i);
    if (!at) return NULL;
    uint32_t k = rd32(t->b + at);
    if (k > t->len / (elem ? elem : 1) || !fb_ok(t, at + 4, (size_t)k * elem)) return NULL;
    *n = k;
    return t->b + at + 4;
}
static int fb_elem_table(const fbtab *t, unsigned field, uint32_t k, fbtab *out) {
    uint32_t n;
    const uint8_t *v = fb_vector(t, field, 4, &n);
    if (!v || k >= n) return -1;
    size_t at = (size_t)(v - t->b) + 4 * k;
    return fb_table(t->b, t->len, at + rd32(t->b + at), out);
}

/* ---- the model ---------------------------------------------------------------------------------------- */
typedef struct {
    char name[MAX_NAME];
    uint32_t n_dims, dims[MAX_DIMS];
    int type, qnt_type, layout; /* layout: FMT_* the tensor is exchanged in */
    int32_t zp;
    float scale;
    uint64_t n_elems;
} tensor_t;

typedef struct {
    int used;
    uint32_t flags;
    int format;
    uint64_t fb_len, model_size;
    char platform[32], soc[32], toolkit[64];
    uint32_t n_in, n_out;
    tensor_t *in, *out;
    int core_mask, cores;
    int64_t run_us;
    uint64_t frame, runs, input_sum;
    int ran;
    char *perf;
    size_t perf_len;
    uint8_t **outbufs;  /* buffers handed out by rknn_outputs_get, per output */
    tensor_mem_t **io_mem_in, **io_mem_out;
} model_t;

#define MAX_CTX 64
static model_t g_ctx[MAX_CTX];

static int dtype_size(int type) {
    switch (type) {
    case T_FLOAT32: case T_INT32: case T_UINT32: return 4;
    case T_FLOAT16: case T_INT16: case T_UINT16: case T_BFLOAT16: return 2;
    case T_INT64: return 8;
    default: return 1;
    }
}
static const char *type_name(int type) {
    static const char *n[] = {"FP32", "FP16", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64",
                              "BOOL", "INT4", "BF16"};
    return type >= 0 && type <= T_BFLOAT16 ? n[type] : "UNKNOW";
}
static int type_of_name(const char *s) {
    static const struct { const char *n; int t; } m[] = {
        {"float32", T_FLOAT32}, {"float", T_FLOAT32}, {"fp32", T_FLOAT32}, {"float16", T_FLOAT16},
        {"fp16", T_FLOAT16}, {"int8", T_INT8}, {"uint8", T_UINT8}, {"int16", T_INT16}, {"uint16", T_UINT16},
        {"int32", T_INT32}, {"uint32", T_UINT32}, {"int64", T_INT64}, {"bool", T_BOOL}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) if (!strcmp(s, m[i].n)) return m[i].t;
    return -1;
}
static int type_of_code(int code) {   /* the FlatBuffer data type codes verified on real models */
    switch (code) { case 1: return T_FLOAT32; case 3: return T_INT8; case 6: return T_INT32;
                    case 7: return T_INT64; case 10: return T_FLOAT16; default: return -1; }
}

/* SoC of the board (device tree), "" when unknown */
static void board_soc(char *out, size_t cap) {
    static const char *paths[] = {"/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible"};
    static const char *socs[] = {"rk3588s", "rk3588", "rk3576", "rk3568", "rk3566", "rk3562", "rv1106b",
                                 "rv1103b", "rv1106", "rv1103", "rv1126b"};
    out[0] = 0;
    for (int p = 0; p < 2; p++) {
        FILE *f = fopen(paths[p], "rb");
        if (!f) continue;
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        for (size_t i = 0; i < n; i++) if (buf[i] == 0) buf[i] = '\n';
        /* the last "rockchip,<soc>" entry names the SoC */
        char *s = buf, *best = NULL;
        while ((s = strstr(s, "rockchip,")) != NULL) { best = s + 9; s += 9; }
        if (!best) continue;
        for (size_t k = 0; k < sizeof socs / sizeof *socs; k++)
            if (!strncmp(best, socs[k], strlen(socs[k]))) {
                snprintf(out, cap, "%s", !strcmp(socs[k], "rk3588s") ? "rk3588" : socs[k]);
                return;
            }
    }
}
static int family(const char *soc) {
    static const char *fam[][3] = {{"rk3588", "rk3588s", NULL}, {"rk3576", NULL, NULL}, {"rk3566", "rk3568", NULL},
                                   {"rk3562", NULL, NULL}, {"rv1106", "rv1103", NULL}, {"rv1106b", "rv1103b", NULL},
                                   {"rv1126b", NULL, NULL}};
    for (int f = 0; f < (int)(sizeof fam / sizeof *fam); f++)
        for (int k = 0; k < 3 && fam[f][k]; k++) if (!strcmp(soc, fam[f][k])) return f;
    return -1;
}
static int soc_cores(const char *soc) {
    if (!strncmp(soc, "rk3588", 6)) return 3;
    if (!strcmp(soc, "rk3576")) return 2;
    return 1;
}
static void driver_version(char *out, size_t cap) {
    snprintf(out, cap, "%s", DEFAULT_DRIVER);
    FILE *f = fopen("/sys/kernel/debug/rknpu/version", "r");
    if (!f) return;
    char buf[128] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *v = strstr(buf, "v");
    for (v = v ? v + 1 : buf; *v && !(*v >= '0' && *v <= '9'); v++) ;
    size_t l = strspn(v, "0123456789.");
    if (l) snprintf(out, cap, "%.*s", (int)l, v);
}
static void parse_ver(const char *s, int v[3]) {
    v[0] = v[1] = v[2] = 0;
    for (int i = 0; i < 3 && *s; i++) {
        v[i] = atoi(s);
        while (*s >= '0' && *s <= '9') s++;
        if (*s != '.') break;
        s++;
    }
}

/* the FlatBuffer facts about one I/O tensor, matched by name; also the model's I/O JSON dtype/layout */
static void fb_tensor_facts(const uint8_t *fb, size_t len, int output, tensor_t *t) {
    fbtab root, graph, ten;
    uint32_t rootpos;
    if (len < 8 || memcmp(fb + 4, "RKNN", 4)) return;
    rootpos = rd32(fb);
    if (fb_table(fb, len, rootpos, &root) < 0) return;
    size_t sl;
    const char *io = fb_string(&root, output ? 13 : 12, &sl);
    if (io) {
        jparser j;
        int r = jparse(&j, io, sl);
        if (r >= 0) {
            int e = jget(&j, r, t->name);
            char s[32];
            jcopy(&j, jget(&j, e, "dtype"), s, sizeof s);
            int ty = type_of_name(s);
            if (ty >= 0) t->type = ty;
            jcopy(&j, jget(&j, e, "layout"), s, sizeof s);
            if (!strcmp(s, "NHWC") || !strcmp(s, "nhwc")) t->layout = FMT_NHWC;
            else if (!strcmp(s, "NCHW") || !strcmp(s, "nchw")) t->layout = FMT_NCHW;
        }
        free(j.n);
    }
    if (fb_elem_table(&root, 2, 0, &graph) < 0) return;
    uint32_t nt;
    if (!fb_vector(&graph, 0, 4, &nt)) return;
    for (uint32_t k = 0; k < nt && k < 100000; k++) {
        if (fb_elem_table(&graph, 0, k, &ten) < 0) continue;
        const char *nm = fb_string(&ten, 5, &sl);
        if (!nm || sl != strlen(t->name) || memcmp(nm, t->name, sl)) continue;
        size_t at = fb_field(&ten, 2);
        if (at && fb_ok(&ten, at, 1) && ten.b[at] != (output ? 2 : 1)) continue;
        at = fb_field(&ten, 0);
        if (at && fb_ok(&ten, at, 1) && type_of_code(ten.b[at]) >= 0) t->type = type_of_code(ten.b[at]);
        uint32_t n;
        const uint8_t *v = fb_vector(&ten, 10, 4, &n);
        if (v && n) { float f; memcpy(&f, v, 4); t->scale = f; t->qnt_type = QNT_AFFINE; }
        v = fb_vector(&ten, 11, 4, &n);
        if (v && n) { t->zp = (int32_t)rd32(v); t->qnt_type = QNT_AFFINE; }
        return;
    }
}

static int load_tensors(model_t *m, const jparser *j, int root, const uint8_t *fb, size_t fblen) {
    int graph = jget(j, root, "graph");
    m->n_in = (uint32_t)jint(j, jget(j, root, "input_num"), 0);
    m->n_out = (uint32_t)jint(j, jget(j, root, "output_num"), 0);
    if (m->n_in > 256 || m->n_out > 256 || graph < 0 || j->n[graph].type != J_ARR) return -1;
    m->in = calloc(m->n_in ? m->n_in : 1, sizeof(tensor_t));
    m->out = calloc(m->n_out ? m->n_out : 1, sizeof(tensor_t));
    if (!m->in || !m->out) return -1;
    uint32_t seen_in = 0, seen_out = 0;
    for (int link = j->n[graph].first; link >= 0; link = j->n[link].next) {
        char side[16], list[32];
        jcopy(j, jget(j, link, "left"), side, sizeof side);
        int output = !strcmp(side, "output");
        if (!output && strcmp(side, "input")) continue;
        long slot = jint(j, jget(j, link, "left_tensor_id"), output ? seen_out : seen_in);
        long tid = jint(j, jget(j, link, "right_tensor_id"), -1);
        jcopy(j, jget(j, link, "right"), list, sizeof list);
        if (!list[0]) strcpy(list, "norm_tensor");
        if (slot < 0 || (uint32_t)slot >= (output ? m->n_out : m->n_in)) return -1;
        int arr = jget(j, root, list), tn = -1;
        for (int c = arr >= 0 && j->n[arr].type == J_ARR ? j->n[arr].first : -1; c >= 0; c = j->n[c].next)
            if (jint(j, jget(j, c, "tensor_id"), -2) == tid) { tn = c; break; }
        if (tn < 0) return -1;
        tensor_t *t = output ? &m->out[slot] : &m->in[slot];
        if (output) seen_out++; else seen_in++;
        jcopy(j, jget(j, tn, "url"), t->name, sizeof t->name);
        int size = jget(j, tn, "size");
        if (size < 0 || j->n[size].type != J_ARR || jcount(j, size) > MAX_DIMS) return -1;
        t->n_dims = 0; t->n_elems = 1;
        for (int d = j->n[size].first; d >= 0; d = j->n[d].next) {
            long v = jint(j, d, -1);
            if (v < 0 || v > (1L << 30)) return -1;
            t->dims[t->n_dims++] = (uint32_t)v;
            t->n_elems *= (uint64_t)v;
            if (t->n_elems > (1ULL << 32)) return -1;
        }
        int dt = jget(j, tn, "dtype");
        char vx[32], qt[32];
        jcopy(j, jget(j, dt, "vx_type"), vx, sizeof vx);
        jcopy(j, jget(j, dt, "qnt_type"), qt, sizeof qt);
        t->type = type_of_name(vx);
        if (t->type < 0) t->type = type_of_name(qt);
        t->qnt_type = QNT_NONE; t->zp = 0; t->scale = 1.0f;
        t->layout = t->n_dims == 4 ? (output ? FMT_NCHW : FMT_NHWC) : FMT_UNDEFINED;
        fb_tensor_facts(fb, fblen, output, t);
        if (t->type < 0) t->type = qt[0] ? T_INT8 : T_FLOAT16;
        if (t->qnt_type == QNT_NONE && (t->type == T_INT8 || t->type == T_UINT8 || t->type == T_INT16) && qt[0])
            t->qnt_type = QNT_AFFINE;
    }
    if (seen_in != m->n_in || seen_out != m->n_out) return -1;
    return 0;
}

static void free_model(model_t *m) {
    if (m->outbufs) for (uint32_t i = 0; i < m->n_out; i++) free(m->outbufs[i]);
    free(m->outbufs); free(m->in); free(m->out); free(m->perf); free(m->io_mem_in); free(m->io_mem_out);
    memset(m, 0, sizeof *m);
}

static int64_t run_time_us(const model_t *m) {
    uint64_t elems = 0;
    for (uint32_t i = 0; i < m->n_out; i++) elems += m->out[i].n_elems;
    uint64_t us = (200 + m->fb_len / 64 + elems / 256) / (uint64_t)(m->cores > 0 ? m->cores : 1);
    return (int64_t)(us > 2000000 ? 2000000 : us);
}

static int parse_model(model_t *m, const uint8_t *d, uint64_t size) {
    if (size < 24 || memcmp(d, "RKNN", 4)) { err_msg("invalid RKNN model: bad magic"); return RKNN_ERR_MODEL_INVALID; }
    uint64_t fmt = rd64(d + 8), L = rd64(d + 16);
    uint64_t off = fmt == 1 ? 24 : 64;
    if (fmt != 1 && fmt != 2 && fmt != 4 && fmt != 6 && fmt != 4100) {
        err_msg("Invalid RKNN model version %llu", (unsigned long long)fmt);
        return RKNN_ERR_MODEL_INVALID;
    }
    if (size < off || L > size - off || size - off - L < 8) { err_msg("invalid RKNN model: truncated"); return RKNN_ERR_MODEL_INVALID; }
    uint64_t J = rd64(d + off + L);
    if (J > size - off - L - 8) { err_msg("invalid RKNN model: truncated metadata"); return RKNN_ERR_MODEL_INVALID; }
    m->format = (int)fmt; m->fb_len = L; m->model_size = size;
    jparser j;
    int root = jparse(&j, (const char *)d + off + L + 8, (size_t)J);
    int rc = RKNN_SUCC;
    if (root < 0 || j.n[root].type != J_OBJ) { err_msg("invalid RKNN model: metadata is not JSON"); rc = RKNN_ERR_MODEL_INVALID; goto done; }
    int tp = jget(&j, root, "target_platform");
    jcopy(&j, j.n[tp >= 0 ? tp : 0].type == J_ARR ? jindex(&j, tp, 0) : tp, m->platform, sizeof m->platform);
    jcopy(&j, jget(&j, root, "version"), m->toolkit, sizeof m->toolkit);
    if (load_tensors(m, &j, root, d + off, (size_t)L) < 0) {
        err_msg("invalid RKNN model: inputs/outputs"); rc = RKNN_ERR_MODEL_INVALID; goto done;
    }
done:
    free(j.n);
    return rc;
}

/* rknn_server 2.3.2 passes small integers where rknn_api.h documents extension pointers (it calls
   rknn_outputs_get with extend = 0x1): such a value is logged and never dereferenced */
static int real_pointer(const void *p, const char *call, const char *what) {
    if (p == NULL) return 0;
    if ((uintptr_t)p < 4096) {
        warn("%s: %s = %p is not a pointer (undocumented use of the argument): ignored", call, what, p);
        return 0;
    }
    return 1;
}

static model_t *get(rknn_context ctx) {
    if (ctx < 1 || ctx > MAX_CTX || !g_ctx[ctx - 1].used) return NULL;
    return &g_ctx[ctx - 1];
}
#define GET(m, ctx) model_t *m = get(ctx); if (!m) { warn("%s: invalid context %llu", __func__, (unsigned long long)(ctx)); return RKNN_ERR_CTX_INVALID; }

/* ---- the API ------------------------------------------------------------------------------------------ */
int rknn_init(rknn_context *ctx, void *model, uint32_t size, uint32_t flag, init_extend_t *extend) {
    if (flag & ~0x3ffffu)
        warn("rknn_init: flag bits 0x%x are not in rknn_api.h (flag=0x%x): ignored", flag & ~0x3ffffu, flag);
    logc("rknn_init(ctx=%p, model=%p, size=%u, flag=0x%x, extend=%p)%s%s", (void *)ctx, model, size, flag,
         (void *)extend, size == 0 && model ? " path=" : "", size == 0 && model ? (char *)model : "");
    fprintf(stderr, "I RKNN: " TAG "RKNN Runtime Information, %s\n", rknn_rt_version_string);
    if (!ctx || !model) return RKNN_ERR_PARAM_INVALID;
    uint8_t *data = model, *owned = NULL;
    uint64_t len = size;
    if (size == 0) {
        FILE *f = fopen((const char *)model, "rb");
        if (!f) { err_msg("open model %s failed", (const char *)model); return RKNN_ERR_MODEL_INVALID; }
        size_t cap = 1 << 20, n = 0, r;
        owned = malloc(cap);
        while (owned && (r = fread(owned + n, 1, cap - n, f)) > 0) {
            n += r;
            if (n == cap) { uint8_t *o = cap < (1u << 31) ? realloc(owned, cap *= 2) : NULL; if (!o) { free(owned); owned = NULL; } else owned = o; }
        }
        fclose(f);
        if (!owned) return RKNN_ERR_MALLOC_FAIL;
        data = owned; len = n;
    }
    model_t m;
    memset(&m, 0, sizeof m);
    m.flags = flag;
    int rc = parse_model(&m, data, len);
    free(owned);
    if (rc) { free_model(&m); return rc; }
    char soc[32];
    board_soc(soc, sizeof soc);
    fprintf(stderr, "I RKNN: " TAG "RKNN Model Information, version: %d, toolkit version: %s, target platform: %s\n",
            m.format, m.toolkit, m.platform);
    if (soc[0] && m.platform[0] && family(soc) != family(m.platform)) {
        err_msg("This rknn model is for %s, but current platform is %s", m.platform, soc);
        free_model(&m);
        return RKNN_ERR_TARGET_PLATFORM_UNMATCH;
    }
    if (!soc[0]) warn("the board's SoC is unknown (no device tree): taking the model's %s", m.platform);
    int mv[3], rv[3];
    parse_ver(m.toolkit, mv);
    parse_ver(RT_VERSION, rv);
    if (mv[0] * 1000000 + mv[1] * 1000 + mv[2] > rv[0] * 1000000 + rv[1] * 1000 + rv[2]) {
        err_msg("RKNN model version is %d.%d.%d, but current librknnrt.so is support model version <= %d.%d.%d",
                mv[0], mv[1], mv[2], rv[0], rv[1], rv[2]);
        free_model(&m);
        return RKNN_ERR_MODEL_INVALID;
    }
    if (!soc[0]) snprintf(soc, sizeof soc, "%s", m.platform);
    m.cores = 1;
    m.core_mask = 0;
    snprintf(m.soc, sizeof m.soc, "%s", soc);
    m.run_us = run_time_us(&m);
    m.outbufs = calloc(m.n_out ? m.n_out : 1, sizeof(uint8_t *));
    m.io_mem_in = calloc(m.n_in ? m.n_in : 1, sizeof(void *));
    m.io_mem_out = calloc(m.n_out ? m.n_out : 1, sizeof(void *));
    m.used = 1;
    pthread_mutex_lock(&g_lock);
    int slot = -1;
    for (int i = 0; i < MAX_CTX; i++) if (!g_ctx[i].used) { slot = i; break; }
    if (slot >= 0) g_ctx[slot] = m;
    pthread_mutex_unlock(&g_lock);
    if (slot < 0) { free_model(&m); err_msg("too many contexts"); return RKNN_ERR_MALLOC_FAIL; }
    *ctx = (rknn_context)(slot + 1);
    logc("rknn_init -> ctx=%d format=%d platform=%s board=%s inputs=%u outputs=%u run_us=%lld", slot + 1,
         m.format, m.platform, soc, m.n_in, m.n_out, (long long)m.run_us);
    return RKNN_SUCC;
}

int rknn_dup_context(rknn_context *in, rknn_context *out) {
    logc("rknn_dup_context(in=%p, out=%p)", (void *)in, (void *)out);
    if (!in || !out) return RKNN_ERR_PARAM_INVALID;
    GET(m, *in);
    model_t c = *m;
    c.in = malloc(sizeof(tensor_t) * (m->n_in ? m->n_in : 1));
    c.out = malloc(sizeof(tensor_t) * (m->n_out ? m->n_out : 1));
    c.outbufs = calloc(m->n_out ? m->n_out : 1, sizeof(uint8_t *));
    c.io_mem_in = calloc(m->n_in ? m->n_in : 1, sizeof(void *));
    c.io_mem_out = calloc(m->n_out ? m->n_out : 1, sizeof(void *));
    c.perf = NULL; c.perf_len = 0; c.ran = 0;
    if (!c.in || !c.out || !c.outbufs || !c.io_mem_in || !c.io_mem_out) { free_model(&c); return RKNN_ERR_MALLOC_FAIL; }
    memcpy(c.in, m->in, sizeof(tensor_t) * m->n_in);
    memcpy(c.out, m->out, sizeof(tensor_t) * m->n_out);
    pthread_mutex_lock(&g_lock);
    int slot = -1;
    for (int i = 0; i < MAX_CTX; i++) if (!g_ctx[i].used) { slot = i; break; }
    if (slot >= 0) g_ctx[slot] = c;
    pthread_mutex_unlock(&g_lock);
    if (slot < 0) { free_model(&c); return RKNN_ERR_MALLOC_FAIL; }
    *out = (rknn_context)(slot + 1);
    return RKNN_SUCC;
}

int rknn_destroy(rknn_context ctx) {
    logc("rknn_destroy(ctx=%llu)", (unsigned long long)ctx);
    GET(m, ctx);
    pthread_mutex_lock(&g_lock);
    free_model(m);
    pthread_mutex_unlock(&g_lock);
    return RKNN_SUCC;
}

static void fill_attr(const model_t *m, const tensor_t *t, uint32_t index, int native, tensor_attr_t *a) {
    memset(a, 0, sizeof *a);
    a->index = index;
    a->n_dims = t->n_dims;
    memcpy(a->dims, t->dims, sizeof a->dims);
    snprintf(a->name, sizeof a->name, "%s", t->name);
    a->n_elems = (uint32_t)t->n_elems;
    a->type = t->type;
    a->qnt_type = t->qnt_type;
    a->zp = t->zp;
    a->scale = t->scale;
    a->fmt = t->n_dims == 4 ? t->layout : FMT_UNDEFINED;
    /* a 4-D tensor exchanged as NHWC while recorded as NCHW: report NHWC dims, as the runtime does */
    if (t->n_dims == 4 && (a->fmt == FMT_NHWC || native == 2)) {
        a->fmt = FMT_NHWC;
        a->dims[1] = t->dims[2]; a->dims[2] = t->dims[3]; a->dims[3] = t->dims[1];
    }
    if (native == 1 && t->n_dims == 4 && t->layout == FMT_NCHW) {   /* NC1HWC2, C2 = 16 (8-bit) or 8 */
        uint32_t c2 = dtype_size(t->type) == 1 ? 16 : 8, c = t->dims[1];
        a->fmt = FMT_NC1HWC2; a->n_dims = 5;
        a->dims[0] = t->dims[0]; a->dims[1] = (c + c2 - 1) / c2; a->dims[2] = t->dims[2]; a->dims[3] = t->dims[3];
        a->dims[4] = c2;
        a->n_elems = a->dims[0] * a->dims[1] * a->dims[2] * a->dims[3] * c2;
    }
    a->size = a->n_elems * (uint32_t)dtype_size(t->type);
    a->w_stride = (a->fmt == FMT_NHWC) ? a->dims[2] : 0;
    a->size_with_stride = a->size;
    (void)m;
}

static char *perf_table(const model_t *m, size_t *len) {
    size_t cap = 4096 + 512 * (m->n_in + m->n_out + 8);
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    const char *dash = "---------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------";
    const char *dash2 = "---------------------------------------------------------------------------------------------------";
#define OUT(...) (p += snprintf(p, cap - (size_t)(p - s), __VA_ARGS__))
    OUT("%s\n%73s%s%79s\n%s\n", dash, "", "Network Layer Information Table", "", dash);
    OUT("%-5s%-17s%-9s%-7s%-41s%-23s%-25s%-13s%-21s%-21s%-13s%-16s\n", "ID", "OpType", "DataType", "Target",
        "InputShape", "OutputShape", "Cycles(DDR/NPU/Total)", "Time(us)", "MacUsage(%)", "WorkLoad(0/1/2)",
        "RW(KB)", "FullName");
    OUT("%s\n", dash);
    /* layers: InputOperator per input (CPU), 4 NPU layers sharing the NPU time, OutputOperator per output (CPU) */
    int64_t total = m->run_us, cpu_in = m->n_in ? 4 : 0, cpu_out = 0;
    for (uint32_t i = 0; i < m->n_out; i++) cpu_out += 20 + (int64_t)(m->out[i].n_elems / 4096);
    int64_t npu = total - cpu_in * m->n_in - cpu_out;
    if (npu < 4) npu = 4;
    int id = 1;
    char shape[64], shp2[64];
    uint64_t rw_total = 0;
    for (uint32_t i = 0; i < m->n_in; i++) {
        const tensor_t *t = &m->in[i];
        char *q = shape; q += sprintf(q, "(");
        for (uint32_t d = 0; d < t->n_dims && d < 8; d++) q += sprintf(q, "%s%u", d ? "," : "", t->dims[d]);
        sprintf(q, ")");
        char full[300]; snprintf(full, sizeof full, "InputOperator:%s", t->name);
        OUT("%-4d %-16s %-8s %-6s %-40s %-22s %-24s %-12lld %-20s %-20s %-12d %s\n", id++, "InputOperator", type_name(t->type),
            "CPU", "\\", shape, "0/0/0", (long long)cpu_in, "\\", "0.0%/0.0%/0.0%", 0, full);
    }
    const char *ops[4] = {"ConvRelu", "ConvRelu", "Add", "Conv"};
    int64_t left = npu;
    snprintf(shape, sizeof shape, "%s", m->n_in ? "(1,8,8,8)" : "\\");
    for (int k = 0; k < 4; k++) {
        int64_t t = k < 3 ? npu * (4 - k) / 10 : left;
        left -= t;
        uint64_t rw = (m->fb_len / 4 + 1024) / 1024;
        rw_total += rw;
        char cyc[64]; snprintf(cyc, sizeof cyc, "%lld/%lld/%lld", (long long)t * 100, (long long)t * 500, (long long)t * 500);
        char full[64]; snprintf(full, sizeof full, "%s:standin_layer_%d", ops[k], k);
        char work[32]; snprintf(work, sizeof work, "%s", "100.0%/0.0%/0.0%");
        OUT("%-4d %-16s %-8s %-6s %-40s %-22s %-24s %-12lld %-20s %-20s %-12llu %s\n", id++, ops[k], "INT8", "NPU", shape,
            "(1,8,8,8)", cyc, (long long)t, "1.00/0.00/0.00", work, (unsigned long long)rw, full);
    }
    for (uint32_t i = 0; i < m->n_out; i++) {
        const tensor_t *t = &m->out[i];
        char *q = shp2; q += sprintf(q, "(");
        for (uint32_t d = 0; d < t->n_dims && d < 8; d++) q += sprintf(q, "%s%u", d ? "," : "", t->dims[d]);
        sprintf(q, ")");
        char full[300]; snprintf(full, sizeof full, "OutputOperator:%s", t->name);
        uint64_t rw = t->n_elems * (uint64_t)dtype_size(t->type) / 1024;
        rw_total += rw;
        OUT("%-4d %-16s %-8s %-6s %-40s %-22s %-24s %-12lld %-20s %-20s %-12llu %s\n", id++, "OutputOperator",
            type_name(t->type), "CPU", shp2, "\\", "0/0/0", (long long)(20 + (int64_t)(t->n_elems / 4096)), "\\",
            "0.0%/0.0%/0.0%", (unsigned long long)rw, full);
    }
    int64_t sum = cpu_in * m->n_in + cpu_out + npu;
    OUT("%s\nTotal Operator Elapsed Per Frame Time(us): %lld\nTotal Memory Read/Write Per Frame Size(KB): %llu\n%s\n",
        dash, (long long)sum, (unsigned long long)rw_total, dash);
    OUT("%s\n%33s%s%12s\n%s\n", dash2, "", "Operator Time Consuming Ranking Table", "", dash2);
    OUT("%-19s%-13s%-13s%-13s%-13s%-15s%-14s\n%s\n", "OpType", "CallNumber", "CPUTime(us)", "GPUTime(us)",
        "NPUTime(us)", "TotalTime(us)", "TimeRatio(%)", dash2);
    struct { const char *op; int calls; int64_t cpu, npu; } rk[4] = {
        {"ConvRelu", 2, 0, npu * 7 / 10}, {"Conv", 1, 0, npu - npu * 7 / 10 - npu * 2 / 10},
        {"Add", 1, 0, npu * 2 / 10}, {"OutputOperator", (int)m->n_out, cpu_out, 0}};
    for (int k = 0; k < 4; k++) {
        int64_t tt = rk[k].cpu + rk[k].npu;
        char ratio[16]; snprintf(ratio, sizeof ratio, "%.2f%%", sum ? 100.0 * (double)tt / (double)sum : 0.0);
        if (rk[k].calls) OUT("%-19s%-13d%-13lld%-13d%-13lld%-15lld%-14s\n", rk[k].op, rk[k].calls, (long long)rk[k].cpu, 0,
                             (long long)rk[k].npu, (long long)tt, ratio);
    }
    if (m->n_in) {
        char ratio[16]; snprintf(ratio, sizeof ratio, "%.2f%%", sum ? 100.0 * (double)(cpu_in * m->n_in) / (double)sum : 0.0);
        OUT("%-19s%-13u%-13lld%-13d%-13d%-15lld%-14s\n", "InputOperator", m->n_in, (long long)(cpu_in * m->n_in), 0, 0,
            (long long)(cpu_in * m->n_in), ratio);
    }
    OUT("%s\n", dash2);
#undef OUT
    *len = (size_t)(p - s);
    return s;
}

int rknn_query(rknn_context ctx, int cmd, void *info, uint32_t size) {
    logc("rknn_query(ctx=%llu, cmd=%d, info=%p, size=%u)", (unsigned long long)ctx, cmd, info, size);
    if (!info) { warn("rknn_query: info is NULL (cmd=%d)", cmd); return RKNN_ERR_PARAM_INVALID; }
    if (cmd == Q_SDK_VERSION) {       /* answered without a model, too */
        if (size < sizeof(sdk_version_t)) return RKNN_ERR_PARAM_INVALID;
        sdk_version_t *v = info;
        memset(v, 0, sizeof *v);
        snprintf(v->api_version, sizeof v->api_version, "%s", RT_VERSION);
        driver_version(v->drv_version, sizeof v->drv_version);
        logc("rknn_query SDK_VERSION -> api=%s drv=%s", v->api_version, v->drv_version);
        return RKNN_SUCC;
    }
    GET(m, ctx);
    switch (cmd) {
    case Q_IN_OUT_NUM: {
        if (size < sizeof(io_num_t)) return RKNN_ERR_PARAM_INVALID;
        io_num_t *n = info;
        n->n_input = m->n_in; n->n_output = m->n_out;
        return RKNN_SUCC;
    }
    case Q_INPUT_ATTR: case Q_OUTPUT_ATTR: case Q_NATIVE_INPUT_ATTR: case Q_NATIVE_OUTPUT_ATTR:
    case Q_NATIVE_NHWC_INPUT_ATTR: case Q_NATIVE_NHWC_OUTPUT_ATTR: case Q_CURRENT_INPUT_ATTR:
    case Q_CURRENT_OUTPUT_ATTR: case Q_CURRENT_NATIVE_INPUT_ATTR: case Q_CURRENT_NATIVE_OUTPUT_ATTR: {
        if (size < sizeof(tensor_attr_t)) return RKNN_ERR_PARAM_INVALID;
        tensor_attr_t *a = info;
        int output = cmd == Q_OUTPUT_ATTR || cmd == Q_NATIVE_OUTPUT_ATTR || cmd == Q_NATIVE_NHWC_OUTPUT_ATTR ||
                     cmd == Q_CURRENT_OUTPUT_ATTR || cmd == Q_CURRENT_NATIVE_OUTPUT_ATTR;
        int native = (cmd == Q_NATIVE_OUTPUT_ATTR || cmd == Q_CURRENT_NATIVE_OUTPUT_ATTR) ? 1
                   : (cmd == Q_NATIVE_NHWC_OUTPUT_ATTR || cmd == Q_NATIVE_NHWC_INPUT_ATTR) ? 2 : 0;
        uint32_t idx = a->index;
        if (idx >= (output ? m->n_out : m->n_in)) { warn("rknn_query cmd=%d: index %u out of range", cmd, idx); return RKNN_ERR_PARAM_INVALID; }
        fill_attr(m, output ? &m->out[idx] : &m->in[idx], idx, native, a);
        logc("rknn_query attr cmd=%d index=%u -> name=%s n_dims=%u n_elems=%u size=%u fmt=%d type=%d qnt=%d zp=%d scale=%g",
             cmd, idx, a->name, a->n_dims, a->n_elems, a->size, a->fmt, a->type, a->qnt_type, a->zp, a->scale);
        return RKNN_SUCC;
    }
    case Q_PERF_RUN: {
        if (size < sizeof(perf_run_t)) return RKNN_ERR_PARAM_INVALID;
        ((perf_run_t *)info)->run_duration = m->ran ? m->run_us : 0;
        return RKNN_SUCC;
    }
    case Q_PERF_DETAIL: {
        if (size < sizeof(perf_detail_t)) return RKNN_ERR_PARAM_INVALID;
        if (!(m->flags & FLAG_COLLECT_PERF)) logc("note: PERF_DETAIL without RKNN_FLAG_COLLECT_PERF_MASK at init");
        free(m->perf);
        m->perf = perf_table(m, &m->perf_len);
        if (!m->perf) return RKNN_ERR_MALLOC_FAIL;
        ((perf_detail_t *)info)->perf_data = m->perf;
        ((perf_detail_t *)info)->data_len = m->perf_len;
        return RKNN_SUCC;
    }
    case Q_MEM_SIZE: {
        if (size < sizeof(mem_size_t)) return RKNN_ERR_PARAM_INVALID;
        mem_size_t *s = info;
        memset(s, 0, sizeof *s);
        uint64_t io = 0, biggest = 0;
        for (uint32_t i = 0; i < m->n_in; i++) io += m->in[i].n_elems * dtype_size(m->in[i].type);
        for (uint32_t i = 0; i < m->n_out; i++) {
            uint64_t b = m->out[i].n_elems * dtype_size(m->out[i].type);
            io += b;
            if (b > biggest) biggest = b;
        }
        s->total_weight_size = (uint32_t)((m->fb_len + 4095) / 4096 * 4096);
        s->total_internal_size = (uint32_t)((2 * biggest + 4095) / 4096 * 4096);
        s->total_dma_allocated_size = (uint64_t)s->total_weight_size + s->total_internal_size + io;
        logc("rknn_query MEM_SIZE -> weight=%u internal=%u dma=%llu", s->total_weight_size, s->total_internal_size,
             (unsigned long long)s->total_dma_allocated_size);
        return RKNN_SUCC;
    }
    case Q_CUSTOM_STRING: {
        if (size < sizeof(custom_string_t)) return RKNN_ERR_PARAM_INVALID;
        memset(info, 0, sizeof(custom_string_t));
        return RKNN_SUCC;
    }
    case Q_INPUT_DYNAMIC_RANGE: {
        if (size < sizeof(input_range_t)) return RKNN_ERR_PARAM_INVALID;
        input_range_t *r = info;
        uint32_t idx = r->index;
        if (idx >= m->n_in) return RKNN_ERR_PARAM_INVALID;
        memset(r, 0, sizeof *r);
        r->index = idx; r->shape_number = 0; r->fmt = m->in[idx].layout; r->n_dims = m->in[idx].n_dims;
        snprintf(r->name, sizeof r->name, "%s", m->in[idx].name);
        return RKNN_SUCC;
    }
    default:
        warn("rknn_query: unknown or unsupported query cmd=%d (size=%u): RKNN_ERR_PARAM_INVALID", cmd, size);
        return RKNN_ERR_PARAM_INVALID;
    }
}

int rknn_inputs_set(rknn_context ctx, uint32_t n, input_t *inputs) {
    logc("rknn_inputs_set(ctx=%llu, n=%u, inputs=%p)", (unsigned long long)ctx, n, (void *)inputs);
    GET(m, ctx);
    if (!inputs || n > m->n_in) { warn("rknn_inputs_set: %u inputs for a model with %u", n, m->n_in); return RKNN_ERR_PARAM_INVALID; }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        const input_t *in = &inputs[i];
        logc("  input[%u]: index=%u buf=%p size=%u pass_through=%u type=%d fmt=%d", i, in->index, in->buf, in->size,
             in->pass_through, in->type, in->fmt);
        if (in->index >= m->n_in || !in->buf) return RKNN_ERR_PARAM_INVALID;
        const tensor_t *t = &m->in[in->index];
        uint64_t need = t->n_elems * (uint64_t)dtype_size(in->pass_through ? t->type : in->type);
        if (in->size < need) {
            warn("rknn_inputs_set: input %u size %u < %llu expected", in->index, in->size, (unsigned long long)need);
            return RKNN_ERR_PARAM_INVALID;
        }
        const uint8_t *b = in->buf;
        for (uint32_t k = 0; k < in->size; k += 97) sum = sum * 131 + b[k];
    }
    m->input_sum = sum;
    return RKNN_SUCC;
}

int rknn_set_batch_core_num(rknn_context ctx, int n) {
    logc("rknn_set_batch_core_num(ctx=%llu, n=%d)", (unsigned long long)ctx, n);
    GET(m, ctx);
    if (n < 1 || n > soc_cores(m->soc)) return RKNN_ERR_PARAM_INVALID;
    return RKNN_SUCC;
}

int rknn_set_core_mask(rknn_context ctx, int mask) {
    logc("rknn_set_core_mask(ctx=%llu, mask=0x%x)", (unsigned long long)ctx, (unsigned)mask);
    GET(m, ctx);
    int total = soc_cores(m->soc);
    if (total == 1) {
        if (mask != 0 && mask != 0xffff && mask != 1) {
            err_msg("rknn_set_core_mask: %s has one NPU core, core mask 0x%x is invalid", m->soc, mask);
            return RKNN_ERR_PARAM_INVALID;
        }
        m->cores = 1;
    } else if (mask == 0) {
        m->cores = 1;
    } else if (mask == 0xffff) {
        m->cores = total;
    } else if (mask < 0 || mask >= (1 << total)) {
        err_msg("rknn_set_core_mask: invalid core mask 0x%x for %s (%d cores)", mask, m->soc, total);
        return RKNN_ERR_PARAM_INVALID;
    } else {
        m->cores = __builtin_popcount((unsigned)mask);
    }
    m->core_mask = mask;
    m->run_us = run_time_us(m);
    return RKNN_SUCC;
}

int rknn_run(rknn_context ctx, run_extend_t *extend) {
    logc("rknn_run(ctx=%llu, extend=%p)", (unsigned long long)ctx, (void *)extend);
    GET(m, ctx);
    /* Lab: /run/rkdeploy-lab/npu-busy (its text names the holder) makes the emulated NPU busy, as when another
     * process keeps it saturated: the job times out and the runtime says so in the words of the real one
     * ("failed to submit!"), returning RKNN_ERR_TIMEOUT. */
    FILE *busy = fopen("/run/rkdeploy-lab/npu-busy", "r");
    if (busy) {
        char who[128] = "";
        size_t n = fread(who, 1, sizeof who - 1, busy);
        fclose(busy);
        who[n] = 0;
        for (size_t i = 0; i < n; i++) if (who[i] == '\n') who[i] = ' ';
        err_msg("failed to submit!, op id: 0, op name: InputOperator, flags: 0x5, task start: 0, task number: 1, "
                "run task counter: 0, int status: 0 (timeout: the NPU is busy; held by %s)", who[0] ? who : "another process");
        return -2;   /* RKNN_ERR_TIMEOUT */
    }
    usleep((useconds_t)m->run_us);   /* the emulated NPU's time, really spent */
    m->frame++;
    m->runs++;
    m->ran = 1;
    if (real_pointer(extend, __func__, "extend")) extend->frame_id = m->frame;
    for (uint32_t i = 0; i < m->n_out; i++) {   /* outputs bound with rknn_set_io_mem are written now */
        tensor_mem_t *mem = m->io_mem_out[i];
        if (mem && mem->virt_addr)
            for (uint32_t k = 0; k < mem->size; k++) ((uint8_t *)mem->virt_addr)[k] = (uint8_t)((k * 31 + i * 7 + m->input_sum) & 0x7f);
    }
    return RKNN_SUCC;
}

int rknn_wait(rknn_context ctx, run_extend_t *extend) {
    logc("rknn_wait(ctx=%llu, extend=%p)", (unsigned long long)ctx, (void *)extend);
    GET(m, ctx);
    if (real_pointer(extend, __func__, "extend")) extend->frame_id = m->frame;
    return RKNN_SUCC;
}

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, f = h & 0x3ff, r;
    if (e == 0) { float v = (float)f / 1024.0f / 16384.0f; return s ? -v : v; }
    if (e == 31) r = s | 0x7f800000 | (f << 13); else r = s | ((e + 112) << 23) | (f << 13);
    float out; memcpy(&out, &r, 4); return out;
}

int rknn_outputs_get(rknn_context ctx, uint32_t n, output_t *outputs, output_extend_t *extend) {
    logc("rknn_outputs_get(ctx=%llu, n=%u, outputs=%p, extend=%p)", (unsigned long long)ctx, n, (void *)outputs, (void *)extend);
    GET(m, ctx);
    if (!outputs || n > m->n_out) { warn("rknn_outputs_get: %u outputs for a model with %u", n, m->n_out); return RKNN_ERR_PARAM_INVALID; }
    if (!m->ran) { warn("rknn_outputs_get before rknn_run"); return RKNN_ERR_FAIL; }
    for (uint32_t i = 0; i < n; i++) {
        output_t *o = &outputs[i];
        logc("  output[%u]: want_float=%u is_prealloc=%u index=%u buf=%p size=%u", i, o->want_float, o->is_prealloc,
             o->index, o->buf, o->size);
        if (o->index >= m->n_out) return RKNN_ERR_PARAM_INVALID;
        const tensor_t *t = &m->out[o->index];
        int esz = o->want_float ? 4 : dtype_size(t->type);
        uint64_t bytes = t->n_elems * (uint64_t)esz;
        if (bytes > (1ULL << 31)) return RKNN_ERR_MALLOC_FAIL;
        uint8_t *buf;
        if (o->is_prealloc) {
            if (!o->buf || o->size < bytes) { warn("rknn_outputs_get: output %u buffer %u < %llu", o->index, o->size, (unsigned long long)bytes); return RKNN_ERR_PARAM_INVALID; }
            buf = o->buf;
        } else {
            free(m->outbufs[o->index]);
            buf = m->outbufs[o->index] = malloc(bytes ? bytes : 1);
            if (!buf) return RKNN_ERR_MALLOC_FAIL;
            o->buf = buf;
            o->size = (uint32_t)bytes;
        }
        for (uint64_t k = 0; k < t->n_elems; k++) {
            uint8_t q = (uint8_t)((k * 31 + o->index * 7 + m->input_sum) & 0x7f);
            if (o->want_float) {
                float v;
                if (t->type == T_FLOAT16) v = half_to_float((uint16_t)(q << 6));
                else if (t->qnt_type == QNT_AFFINE) v = ((float)(int8_t)q - (float)t->zp) * t->scale;
                else v = (float)q;
                memcpy(buf + 4 * k, &v, 4);
            } else {
                memset(buf + k * esz, 0, esz);
                if (t->type == T_FLOAT16) { uint16_t h = (uint16_t)(q << 6); memcpy(buf + k * esz, &h, 2); }
                else if (t->type == T_FLOAT32) { float v = (float)q; memcpy(buf + k * esz, &v, 4); }
                else buf[k * esz] = q;
            }
        }
    }
    if (real_pointer(extend, __func__, "extend")) extend->frame_id = m->frame;
    return RKNN_SUCC;
}

int rknn_outputs_release(rknn_context ctx, uint32_t n, output_t *outputs) {
    logc("rknn_outputs_release(ctx=%llu, n=%u, outputs=%p)", (unsigned long long)ctx, n, (void *)outputs);
    GET(m, ctx);
    if (!outputs) return RKNN_ERR_PARAM_INVALID;
    for (uint32_t i = 0; i < n; i++) {
        output_t *o = &outputs[i];
        if (!o->is_prealloc && o->index < m->n_out && o->buf == m->outbufs[o->index]) {
            free(m->outbufs[o->index]);
            m->outbufs[o->index] = NULL;
            o->buf = NULL;
        }
    }
    return RKNN_SUCC;
}

static tensor_mem_t *new_mem(void *virt, uint64_t size, int32_t fd, int32_t off, uint64_t phys, uint32_t flags) {
    tensor_mem_t *mem = calloc(1, sizeof *mem);
    if (!mem) return NULL;
    mem->virt_addr = virt; mem->size = (uint32_t)size; mem->fd = fd; mem->offset = off; mem->phys_addr = phys;
    mem->flags = flags;
    return mem;
}
tensor_mem_t *rknn_create_mem_from_phys(rknn_context ctx, uint64_t phys, void *virt, uint32_t size) {
    logc("rknn_create_mem_from_phys(ctx=%llu, phys=0x%llx, virt=%p, size=%u)", (unsigned long long)ctx, (unsigned long long)phys, virt, size);
    return new_mem(virt, size, -1, 0, phys, 3);
}
tensor_mem_t *rknn_create_mem_from_fd(rknn_context ctx, int32_t fd, void *virt, uint32_t size, int32_t off) {
    logc("rknn_create_mem_from_fd(ctx=%llu, fd=%d, virt=%p, size=%u, offset=%d)", (unsigned long long)ctx, fd, virt, size, off);
    return new_mem(virt, size, fd, off, 0, 2);
}
tensor_mem_t *rknn_create_mem_from_mb_blk(rknn_context ctx, void *blk, int32_t off) {
    warn("rknn_create_mem_from_mb_blk(ctx=%llu, blk=%p, offset=%d): no MPI buffers in the stand-in", (unsigned long long)ctx, blk, off);
    return NULL;
}
static tensor_mem_t *alloc_mem(uint64_t size, uint64_t flags) {
    if (size == 0 || size > (1ULL << 31)) return NULL;
    void *virt = calloc(1, size);
    if (!virt) return NULL;
    tensor_mem_t *mem = new_mem(virt, size, -1, 0, (uint64_t)(uintptr_t)virt, 1);
    if (!mem) { free(virt); return NULL; }
    mem->priv_data = virt;   /* owned */
    (void)flags;
    return mem;
}
tensor_mem_t *rknn_create_mem(rknn_context ctx, uint32_t size) {
    logc("rknn_create_mem(ctx=%llu, size=%u)", (unsigned long long)ctx, size);
    return alloc_mem(size, 0);
}
tensor_mem_t *rknn_create_mem2(rknn_context ctx, uint64_t size, uint64_t flags) {
    logc("rknn_create_mem2(ctx=%llu, size=%llu, flags=0x%llx)", (unsigned long long)ctx, (unsigned long long)size, (unsigned long long)flags);
    return alloc_mem(size, flags);
}
int rknn_destroy_mem(rknn_context ctx, tensor_mem_t *mem) {
    logc("rknn_destroy_mem(ctx=%llu, mem=%p)", (unsigned long long)ctx, (void *)mem);
    if (!mem) return RKNN_ERR_PARAM_INVALID;
    model_t *m = get(ctx);
    if (m) {
        for (uint32_t i = 0; i < m->n_in; i++) if (m->io_mem_in[i] == mem) m->io_mem_in[i] = NULL;
        for (uint32_t i = 0; i < m->n_out; i++) if (m->io_mem_out[i] == mem) m->io_mem_out[i] = NULL;
    }
    free(mem->priv_data);
    free(mem);
    return RKNN_SUCC;
}
int rknn_set_weight_mem(rknn_context ctx, tensor_mem_t *mem) {
    logc("rknn_set_weight_mem(ctx=%llu, mem=%p)", (unsigned long long)ctx, (void *)mem);
    GET(m, ctx); (void)m;
    return mem ? RKNN_SUCC : RKNN_ERR_PARAM_INVALID;
}
int rknn_set_internal_mem(rknn_context ctx, tensor_mem_t *mem) {
    logc("rknn_set_internal_mem(ctx=%llu, mem=%p)", (unsigned long long)ctx, (void *)mem);
    GET(m, ctx); (void)m;
    return mem ? RKNN_SUCC : RKNN_ERR_PARAM_INVALID;
}
int rknn_set_io_mem(rknn_context ctx, tensor_mem_t *mem, tensor_attr_t *attr) {
    logc("rknn_set_io_mem(ctx=%llu, mem=%p, attr=%p) index=%u name=%s size=%u", (unsigned long long)ctx, (void *)mem,
         (void *)attr, attr ? attr->index : 0, attr ? attr->name : "", mem ? mem->size : 0);
    GET(m, ctx);
    if (!mem || !attr) return RKNN_ERR_PARAM_INVALID;
    for (uint32_t i = 0; i < m->n_out; i++)
        if (!strncmp(attr->name, m->out[i].name, MAX_NAME) && attr->index == i) { m->io_mem_out[i] = mem; return RKNN_SUCC; }
    for (uint32_t i = 0; i < m->n_in; i++)
        if (!strncmp(attr->name, m->in[i].name, MAX_NAME) && attr->index == i) { m->io_mem_in[i] = mem; return RKNN_SUCC; }
    if (attr->index < m->n_in) { m->io_mem_in[attr->index] = mem; return RKNN_SUCC; }
    warn("rknn_set_io_mem: no tensor named %s with index %u", attr->name, attr->index);
    return RKNN_ERR_PARAM_INVALID;
}
int rknn_set_input_shape(rknn_context ctx, tensor_attr_t *attr) {
    logc("rknn_set_input_shape(ctx=%llu, attr=%p)", (unsigned long long)ctx, (void *)attr);
    GET(m, ctx);
    if (!attr || attr->index >= m->n_in || attr->n_dims != m->in[attr->index].n_dims || attr->n_dims > MAX_DIMS) return RKNN_ERR_PARAM_INVALID;
    tensor_t *t = &m->in[attr->index];
    uint64_t n = 1;
    for (uint32_t d = 0; d < attr->n_dims; d++) n *= attr->dims[d];
    if (n != t->n_elems) { warn("rknn_set_input_shape: a static-shape model: shape of input %u cannot change", attr->index); return RKNN_ERR_PARAM_INVALID; }
    return RKNN_SUCC;
}
int rknn_set_input_shapes(rknn_context ctx, uint32_t n, tensor_attr_t *attrs) {
    logc("rknn_set_input_shapes(ctx=%llu, n=%u, attrs=%p)", (unsigned long long)ctx, n, (void *)attrs);
    GET(m, ctx);
    if (!attrs || n != m->n_in) return RKNN_ERR_PARAM_INVALID;
    for (uint32_t i = 0; i < n; i++) { int rc = rknn_set_input_shape(ctx, &attrs[i]); if (rc) return rc; }
    return RKNN_SUCC;
}
int rknn_mem_sync(rknn_context ctx, tensor_mem_t *mem, int mode) {
    logc("rknn_mem_sync(ctx=%llu, mem=%p, mode=%d)", (unsigned long long)ctx, (void *)mem, mode);
    GET(m, ctx); (void)m;
    if (!mem || mode < 1 || mode > 3) return RKNN_ERR_PARAM_INVALID;
    return RKNN_SUCC;
}
int rknn_register_custom_ops(rknn_context ctx, void *ops, uint32_t n) {
    logc("rknn_register_custom_ops(ctx=%llu, ops=%p, n=%u)", (unsigned long long)ctx, ops, n);
    GET(m, ctx); (void)m;
    if (!ops || n == 0) return RKNN_ERR_PARAM_INVALID;
    return RKNN_SUCC;
}
