/*
 * RKDEPLOY LAB STAND-IN for Rockchip's librknnrt.so. It is NOT the Rockchip runtime.
 *
 * It exists so that the lab's boards carry a real aarch64/armhf ELF shared
 * object with the version string the real library carries
 * (`librknnrt version: X (hash@date)`), which is how rkdeploy and Rockchip's
 * rknn_server read a board's runtime version. It exports the public functions
 * of rknn_api.h (so a program that looks them up, such as rknn_server, finds
 * them), but there is no NPU here: every call fails the way the real library
 * fails on a board without a usable NPU device.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef RT_VERSION
#error "RT_VERSION must be defined, e.g. -DRT_VERSION='\"2.3.2 (429f97ae6b@2025-04-09T09:09:27)\"'"
#endif

__attribute__((used)) const char rknn_rt_version_string[] = "librknnrt version: " RT_VERSION;
__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not Rockchip's librknnrt.so, built by tests/lab/sdk.py";

typedef uint64_t rknn_context;
#define RKNN_ERR_FAIL (-1)

static int no_npu(void) {
    fprintf(stderr, "I RKNN: RKNN Runtime Information, %s\n", rknn_rt_version_string);
    fprintf(stderr, "E RKNN: failed to open rknpu module, need to insmod rknpu dirver!\n");
    fprintf(stderr, "E RKNN: failed to open rknn device!\n");
    return RKNN_ERR_FAIL;
}

int rknn_init(rknn_context *ctx, void *model, uint32_t size, uint32_t flag, void *extend) {
    (void)ctx; (void)model; (void)size; (void)flag; (void)extend;
    return no_npu();
}
int rknn_dup_context(rknn_context *in, rknn_context *out) { (void)in; (void)out; return RKNN_ERR_FAIL; }
int rknn_destroy(rknn_context ctx) { (void)ctx; return 0; }
int rknn_query(rknn_context ctx, int cmd, void *info, uint32_t size) { (void)ctx; (void)cmd; (void)info; (void)size; return RKNN_ERR_FAIL; }
int rknn_inputs_set(rknn_context ctx, uint32_t n, void *inputs) { (void)ctx; (void)n; (void)inputs; return RKNN_ERR_FAIL; }
int rknn_set_batch_core_num(rknn_context ctx, int n) { (void)ctx; (void)n; return RKNN_ERR_FAIL; }
int rknn_set_core_mask(rknn_context ctx, int mask) { (void)ctx; (void)mask; return RKNN_ERR_FAIL; }
int rknn_run(rknn_context ctx, void *extend) { (void)ctx; (void)extend; return RKNN_ERR_FAIL; }
int rknn_wait(rknn_context ctx, void *extend) { (void)ctx; (void)extend; return RKNN_ERR_FAIL; }
int rknn_outputs_get(rknn_context ctx, uint32_t n, void *outputs, void *extend) { (void)ctx; (void)n; (void)outputs; (void)extend; return RKNN_ERR_FAIL; }
int rknn_outputs_release(rknn_context ctx, uint32_t n, void *outputs) { (void)ctx; (void)n; (void)outputs; return RKNN_ERR_FAIL; }
void *rknn_create_mem_from_phys(rknn_context ctx, uint64_t phys, void *virt, uint32_t size) { (void)ctx; (void)phys; (void)virt; (void)size; return NULL; }
void *rknn_create_mem_from_fd(rknn_context ctx, int32_t fd, void *virt, uint32_t size, int32_t off) { (void)ctx; (void)fd; (void)virt; (void)size; (void)off; return NULL; }
void *rknn_create_mem_from_mb_blk(rknn_context ctx, void *blk, int32_t off) { (void)ctx; (void)blk; (void)off; return NULL; }
void *rknn_create_mem(rknn_context ctx, uint32_t size) { (void)ctx; (void)size; return NULL; }
void *rknn_create_mem2(rknn_context ctx, uint64_t size, uint64_t flags) { (void)ctx; (void)size; (void)flags; return NULL; }
int rknn_destroy_mem(rknn_context ctx, void *mem) { (void)ctx; (void)mem; return RKNN_ERR_FAIL; }
int rknn_set_weight_mem(rknn_context ctx, void *mem) { (void)ctx; (void)mem; return RKNN_ERR_FAIL; }
int rknn_set_internal_mem(rknn_context ctx, void *mem) { (void)ctx; (void)mem; return RKNN_ERR_FAIL; }
int rknn_set_io_mem(rknn_context ctx, void *mem, void *attr) { (void)ctx; (void)mem; (void)attr; return RKNN_ERR_FAIL; }
int rknn_set_input_shape(rknn_context ctx, void *attr) { (void)ctx; (void)attr; return RKNN_ERR_FAIL; }
int rknn_set_input_shapes(rknn_context ctx, uint32_t n, void *attrs) { (void)ctx; (void)n; (void)attrs; return RKNN_ERR_FAIL; }
int rknn_mem_sync(rknn_context ctx, void *mem, int mode) { (void)ctx; (void)mem; (void)mode; return RKNN_ERR_FAIL; }
int rknn_register_custom_ops(rknn_context ctx, void *ops, uint32_t n) { (void)ctx; (void)ops; (void)n; return RKNN_ERR_FAIL; }
