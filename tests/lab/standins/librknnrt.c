/*
 * RKDEPLOY LAB STAND-IN for Rockchip's librknnrt.so. It is NOT the Rockchip runtime.
 *
 * It exists so that the lab's boards carry a real aarch64/armhf ELF shared
 * object with the version string the real library carries
 * (`librknnrt version: X (hash@date)`), which is how rkdeploy reads a board's
 * runtime version. There is no NPU here, so every API call fails the way the
 * real library fails on a board without a usable NPU device.
 */
#include <stdio.h>
#include <stdint.h>

#ifndef RT_VERSION
#error "RT_VERSION must be defined, e.g. -DRT_VERSION='\"2.3.2 (429f97ae6b@2025-04-09T09:09:27)\"'"
#endif

__attribute__((used)) const char rknn_rt_version_string[] = "librknnrt version: " RT_VERSION;
__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not Rockchip's librknnrt.so, built by tests/lab/sdk.py";

typedef uint64_t rknn_context;

int rknn_init(rknn_context *ctx, void *model, uint32_t size, uint32_t flag, void *extend) {
    (void)ctx; (void)model; (void)size; (void)flag; (void)extend;
    fprintf(stderr, "I RKNN: RKNN Runtime Information, %s\n", rknn_rt_version_string);
    fprintf(stderr, "E RKNN: failed to open rknpu module, need to insmod rknpu dirver!\n");
    fprintf(stderr, "E RKNN: failed to open rknn device!\n");
    return -1;
}

int rknn_destroy(rknn_context ctx) { (void)ctx; return 0; }
int rknn_query(rknn_context ctx, int cmd, void *info, uint32_t size) { (void)ctx; (void)cmd; (void)info; (void)size; return -1; }
int rknn_run(rknn_context ctx, void *extend) { (void)ctx; (void)extend; return -1; }
