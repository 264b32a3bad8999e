/*
 * RKDEPLOY LAB test program (not Rockchip's): dlopens a librknnrt.so, drives the public rknn_api.h calls on
 * one model the way an application (or rknn_server) does, and prints what it got as one JSON object.
 *
 *   rknn_api_probe LIB MODEL [--path] [--mask M]
 *
 * --path: rknn_init with the file path (size 0) instead of the bytes. --mask: rknn_set_core_mask before running.
 * Used by tests/unit/test_standin_runtime.py under qemu-user.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rknn_standin_types.h"

typedef int (*init_f)(rknn_context *, void *, uint32_t, uint32_t, void *);
typedef int (*query_f)(rknn_context, int, void *, uint32_t);
typedef int (*ctx_f)(rknn_context);
typedef int (*mask_f)(rknn_context, int);
typedef int (*run_f)(rknn_context, void *);
typedef int (*inset_f)(rknn_context, uint32_t, input_t *);
typedef int (*outget_f)(rknn_context, uint32_t, output_t *, void *);
typedef int (*outrel_f)(rknn_context, uint32_t, output_t *);
typedef int (*dup_f)(rknn_context *, rknn_context *);
typedef tensor_mem_t *(*cmem_f)(rknn_context, uint32_t);
typedef int (*dmem_f)(rknn_context, tensor_mem_t *);
typedef int (*iomem_f)(rknn_context, tensor_mem_t *, tensor_attr_t *);
typedef int (*sync_f)(rknn_context, tensor_mem_t *, int);

static void *sym(void *h, const char *n) {
    void *p = dlsym(h, n);
    if (!p) { printf("{\"error\": \"dlsym %s\"}\n", n); exit(3); }
    return p;
}
static void jstr(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}
static void attr_json(const tensor_attr_t *a) {
    printf("{\"index\": %u, \"name\": ", a->index);
    jstr(a->name, sizeof a->name);
    printf(", \"n_dims\": %u, \"dims\": [", a->n_dims);
    for (uint32_t d = 0; d < a->n_dims && d < 16; d++) printf("%s%u", d ? ", " : "", a->dims[d]);
    printf("], \"n_elems\": %u, \"size\": %u, \"fmt\": %d, \"type\": %d, \"qnt_type\": %d, \"zp\": %d, \"scale\": %.9g, "
           "\"w_stride\": %u, \"size_with_stride\": %u}", a->n_elems, a->size, a->fmt, a->type, a->qnt_type, a->zp,
           a->scale, a->w_stride, a->size_with_stride);
}
static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s LIB MODEL [--path] [--mask M]\n", argv[0]); return 2; }
    int by_path = 0, mask = -1;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--path")) by_path = 1;
        else if (!strcmp(argv[i], "--mask") && i + 1 < argc) mask = (int)strtol(argv[++i], NULL, 0);
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("{\"error\": \"dlopen\"}\n"); fprintf(stderr, "%s\n", dlerror()); return 3; }
    init_f init = (init_f)sym(h, "rknn_init");
    query_f query = (query_f)sym(h, "rknn_query");
    ctx_f destroy = (ctx_f)sym(h, "rknn_destroy");
    mask_f set_mask = (mask_f)sym(h, "rknn_set_core_mask");
    run_f run = (run_f)sym(h, "rknn_run");
    run_f wait = (run_f)sym(h, "rknn_wait");
    inset_f inputs_set = (inset_f)sym(h, "rknn_inputs_set");
    outget_f outputs_get = (outget_f)sym(h, "rknn_outputs_get");
    outrel_f outputs_release = (outrel_f)sym(h, "rknn_outputs_release");
    dup_f dup = (dup_f)sym(h, "rknn_dup_context");
    cmem_f create_mem = (cmem_f)sym(h, "rknn_create_mem");
    dmem_f destroy_mem = (dmem_f)sym(h, "rknn_destroy_mem");
    iomem_f set_io_mem = (iomem_f)sym(h, "rknn_set_io_mem");
    sync_f mem_sync = (sync_f)sym(h, "rknn_mem_sync");
    (void)sym(h, "rknn_set_input_shapes"); (void)sym(h, "rknn_register_custom_ops");

    static char model[64 << 20];
    uint32_t size = 0;
    if (!by_path) {
        FILE *f = fopen(argv[2], "rb");
        if (!f) { printf("{\"error\": \"open model\"}\n"); return 3; }
        size = (uint32_t)fread(model, 1, sizeof model, f);
        fclose(f);
    }
    const char *rt = dlsym(h, "rknn_rt_version_string");
    printf("{\"rt_version_string\": ");
    jstr(rt ? rt : "", 256);
    sdk_version_t v;
    memset(&v, 0, sizeof v);
    rknn_context ctx = 0;
    int rc = init(&ctx, by_path ? (void *)argv[2] : (void *)model, size, 0x8, NULL);
    printf(", \"init\": %d", rc);
    if (rc) { printf("}\n"); return 0; }
    printf(", \"sdk_version\": %d", query(ctx, Q_SDK_VERSION, &v, sizeof v));
    printf(", \"api_version\": "); jstr(v.api_version, sizeof v.api_version);
    printf(", \"drv_version\": "); jstr(v.drv_version, sizeof v.drv_version);
    io_num_t n;
    query(ctx, Q_IN_OUT_NUM, &n, sizeof n);
    printf(", \"n_input\": %u, \"n_output\": %u", n.n_input, n.n_output);
    const char *kinds[] = {"inputs", "outputs", "native_inputs", "native_outputs", "current_inputs", "current_outputs"};
    const int cmds[] = {Q_INPUT_ATTR, Q_OUTPUT_ATTR, Q_NATIVE_INPUT_ATTR, Q_NATIVE_OUTPUT_ATTR, Q_CURRENT_INPUT_ATTR,
                        Q_CURRENT_OUTPUT_ATTR};
    tensor_attr_t in_attr[64], out_attr[64];
    for (int k = 0; k < 6; k++) {
        printf(", \"%s\": [", kinds[k]);
        uint32_t cnt = (k % 2 ? n.n_output : n.n_input);
        for (uint32_t i = 0; i < cnt && i < 64; i++) {
            tensor_attr_t a;
            memset(&a, 0, sizeof a);
            a.index = i;
            int r = query(ctx, cmds[k], &a, sizeof a);
            if (k == 0) in_attr[i] = a;
            if (k == 1) out_attr[i] = a;
            printf("%s", i ? ", " : "");
            if (r) printf("{\"rc\": %d}", r); else attr_json(&a);
        }
        printf("]");
    }
    if (mask >= 0) printf(", \"set_core_mask\": %d", set_mask(ctx, mask));
    int masks[] = {0, 1, 2, 4, 3, 7, 8, 0xffff};
    printf(", \"core_masks\": {");
    for (int k = 0; k < 8; k++) {   /* on a duplicate context, so the probe's own mask stays */
        rknn_context d = 0;
        int r = dup(&ctx, &d);
        printf("%s\"%d\": %d", k ? ", " : "", masks[k], r ? r : set_mask(d, masks[k]));
        if (!r) destroy(d);
    }
    printf("}");
    /* inputs: deterministic bytes, given as the model's own type (pass_through) */
    input_t ins[64];
    static unsigned char inbuf[64][1 << 20];
    uint32_t nin = n.n_input < 64 ? n.n_input : 64;
    for (uint32_t i = 0; i < nin; i++) {
        uint32_t sz = in_attr[i].size < sizeof inbuf[i] ? in_attr[i].size : sizeof inbuf[i];
        for (uint32_t k = 0; k < sz; k++) inbuf[i][k] = (unsigned char)(k * 13 + i);
        memset(&ins[i], 0, sizeof ins[i]);
        ins[i].index = i; ins[i].buf = inbuf[i]; ins[i].size = sz; ins[i].pass_through = 1;
        ins[i].type = in_attr[i].type; ins[i].fmt = in_attr[i].fmt;
    }
    printf(", \"inputs_set\": %d", inputs_set(ctx, nin, ins));
    output_t early[1] = {{0}};
    printf(", \"outputs_get_before_run\": %d", n.n_output ? outputs_get(ctx, 1, early, NULL) : 0);
    printf(", \"runs\": [");
    for (int r = 0; r < 2; r++) {
        run_extend_t ext = {0};
        double t0 = now_us();
        int rr = run(ctx, &ext);
        double t1 = now_us();
        perf_run_t pr = {0};
        query(ctx, Q_PERF_RUN, &pr, sizeof pr);
        printf("%s{\"rc\": %d, \"wait\": %d, \"frame_id\": %llu, \"wall_us\": %.0f, \"perf_run_us\": %lld}", r ? ", " : "",
               rr, wait(ctx, &ext), (unsigned long long)ext.frame_id, t1 - t0, (long long)pr.run_duration);
    }
    printf("]");
    output_t outs[64];
    uint32_t nout = n.n_output < 64 ? n.n_output : 64;
    for (int wf = 0; wf < 2; wf++) {
        memset(outs, 0, sizeof outs);
        for (uint32_t i = 0; i < nout; i++) { outs[i].index = i; outs[i].want_float = (uint8_t)wf; }
        int r = outputs_get(ctx, nout, outs, NULL);
        printf(", \"outputs_get_%s\": {\"rc\": %d, \"outputs\": [", wf ? "float" : "raw", r);
        for (uint32_t i = 0; i < nout && !r; i++) {
            unsigned long long hsh = 1469598103934665603ULL;
            for (uint32_t k = 0; k < outs[i].size; k++) hsh = (hsh ^ ((unsigned char *)outs[i].buf)[k]) * 1099511628211ULL;
            float first = 0;
            if (wf && outs[i].size >= 4) memcpy(&first, outs[i].buf, 4);
            printf("%s{\"size\": %u, \"fnv\": \"%016llx\", \"first_float\": %.6g}", i ? ", " : "", outs[i].size, hsh, first);
        }
        printf("], \"release\": %d}", r ? 0 : outputs_release(ctx, nout, outs));
    }
    perf_detail_t pd = {0};
    rc = query(ctx, Q_PERF_DETAIL, &pd, sizeof pd);
    printf(", \"perf_detail_rc\": %d, \"perf_detail\": ", rc);
    jstr(pd.perf_data ? pd.perf_data : "", pd.perf_data ? pd.data_len : 0);
    mem_size_t ms;
    memset(&ms, 0, sizeof ms);
    printf(", \"mem_size_rc\": %d", query(ctx, Q_MEM_SIZE, &ms, sizeof ms));
    printf(", \"mem_size\": {\"total_weight_size\": %u, \"total_internal_size\": %u, \"total_dma_allocated_size\": %llu, "
           "\"total_sram_size\": %u, \"free_sram_size\": %u}", ms.total_weight_size, ms.total_internal_size,
           (unsigned long long)ms.total_dma_allocated_size, ms.total_sram_size, ms.free_sram_size);
    custom_string_t cs;
    printf(", \"custom_string_rc\": %d", query(ctx, Q_CUSTOM_STRING, &cs, sizeof cs));
    char junk[4096];
    printf(", \"unknown_query_rc\": %d", query(ctx, 99, junk, sizeof junk));
    /* zero-copy path: memory for output 0, bound with set_io_mem, filled by the run */
    if (nout) {
        tensor_mem_t *mem = create_mem(ctx, out_attr[0].size_with_stride);
        int r1 = mem ? set_io_mem(ctx, mem, &out_attr[0]) : -100;
        int r2 = run(ctx, NULL);
        int r3 = mem ? mem_sync(ctx, mem, 2) : -100;
        printf(", \"io_mem\": {\"create\": %d, \"set\": %d, \"run\": %d, \"sync\": %d, \"destroy\": %d}", mem != NULL, r1, r2,
               r3, mem ? destroy_mem(ctx, mem) : -100);
    }
    printf(", \"destroy\": %d, \"destroy_again\": %d}\n", destroy(ctx), destroy(ctx));
    return 0;
}
