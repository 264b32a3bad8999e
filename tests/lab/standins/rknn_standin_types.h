/* RKDEPLOY LAB STAND-IN: this project's own declarations of the structures and constants that Rockchip's
 * rknn_api.h documents (layouts and sizes match; the header itself is not copied). Used by the stand-in
 * librknnrt.c and by rknn_api_probe.c. */
#ifndef RKDEPLOY_STANDIN_RKNN_TYPES_H
#define RKDEPLOY_STANDIN_RKNN_TYPES_H
#include <stddef.h>
#include <stdint.h>

/* ---- the public API's types, as rknn_api.h documents them (own declarations) ---------------------- */
#ifdef __arm__
typedef uint32_t rknn_context;
#else
typedef uint64_t rknn_context;
#endif

enum { RKNN_SUCC = 0, RKNN_ERR_FAIL = -1, RKNN_ERR_TIMEOUT = -2, RKNN_ERR_DEVICE_UNAVAILABLE = -3,
       RKNN_ERR_MALLOC_FAIL = -4, RKNN_ERR_PARAM_INVALID = -5, RKNN_ERR_MODEL_INVALID = -6,
       RKNN_ERR_CTX_INVALID = -7, RKNN_ERR_INPUT_INVALID = -8, RKNN_ERR_OUTPUT_INVALID = -9,
       RKNN_ERR_DEVICE_UNMATCH = -10, RKNN_ERR_TARGET_PLATFORM_UNMATCH = -13 };
enum { Q_IN_OUT_NUM = 0, Q_INPUT_ATTR, Q_OUTPUT_ATTR, Q_PERF_DETAIL, Q_PERF_RUN, Q_SDK_VERSION, Q_MEM_SIZE,
       Q_CUSTOM_STRING, Q_NATIVE_INPUT_ATTR, Q_NATIVE_OUTPUT_ATTR, Q_NATIVE_NHWC_INPUT_ATTR,
       Q_NATIVE_NHWC_OUTPUT_ATTR, Q_DEVICE_MEM_INFO, Q_INPUT_DYNAMIC_RANGE, Q_CURRENT_INPUT_ATTR,
       Q_CURRENT_OUTPUT_ATTR, Q_CURRENT_NATIVE_INPUT_ATTR, Q_CURRENT_NATIVE_OUTPUT_ATTR };
enum { T_FLOAT32 = 0, T_FLOAT16, T_INT8, T_UINT8, T_INT16, T_UINT16, T_INT32, T_UINT32, T_INT64, T_BOOL,
       T_INT4, T_BFLOAT16 };
enum { QNT_NONE = 0, QNT_DFP, QNT_AFFINE };
enum { FMT_NCHW = 0, FMT_NHWC, FMT_NC1HWC2, FMT_UNDEFINED };
#define FLAG_COLLECT_PERF 0x8
#define MAX_DIMS 16
#define MAX_NAME 256

typedef struct { uint32_t n_input, n_output; } io_num_t;
typedef struct {
    uint32_t index, n_dims, dims[MAX_DIMS];
    char name[MAX_NAME];
    uint32_t n_elems, size;
    int fmt, type, qnt_type;
    int8_t fl;
    int32_t zp;
    float scale;
    uint32_t w_stride, size_with_stride;
    uint8_t pass_through;
    uint32_t h_stride;
} tensor_attr_t;
typedef struct { uint32_t index, shape_number; int fmt; char name[MAX_NAME]; uint32_t dyn_range[512][MAX_DIMS];
                 uint32_t n_dims; } input_range_t;
typedef struct { char *perf_data; uint64_t data_len; } perf_detail_t;
typedef struct { int64_t run_duration; } perf_run_t;
typedef struct { char api_version[256], drv_version[256]; } sdk_version_t;
typedef struct { uint32_t total_weight_size, total_internal_size; uint64_t total_dma_allocated_size;
                 uint32_t total_sram_size, free_sram_size, reserved[10]; } mem_size_t;
typedef struct { char string[1024]; } custom_string_t;
typedef struct { void *virt_addr; uint64_t phys_addr; int32_t fd, offset; uint32_t size, flags; void *priv_data; } tensor_mem_t;
typedef struct { uint32_t index; void *buf; uint32_t size; uint8_t pass_through; int type, fmt; } input_t;
typedef struct { uint8_t want_float, is_prealloc; uint32_t index; void *buf; uint32_t size; } output_t;
typedef struct { rknn_context ctx; int32_t real_model_offset; uint32_t real_model_size; int32_t model_buffer_fd;
                 uint32_t model_buffer_flags; uint8_t reserved[112]; } init_extend_t;
typedef struct { uint64_t frame_id; int32_t non_block, timeout_ms, fence_fd; } run_extend_t;
typedef struct { uint64_t frame_id; } output_extend_t;

_Static_assert(sizeof(tensor_attr_t) == 376, "rknn_tensor_attr is 376 bytes");
_Static_assert(offsetof(tensor_attr_t, n_elems) == 328 && offsetof(tensor_attr_t, zp) == 352 &&
               offsetof(tensor_attr_t, pass_through) == 368, "rknn_tensor_attr layout");
_Static_assert(sizeof(sdk_version_t) == 512 && sizeof(mem_size_t) == 64 && sizeof(custom_string_t) == 1024,
               "query structures");
_Static_assert(sizeof(input_range_t) == 4 * 3 + MAX_NAME + 4 * 512 * MAX_DIMS + 4, "rknn_input_range");
_Static_assert(sizeof(init_extend_t) == sizeof(rknn_context) + 16 + 112 + (sizeof(rknn_context) == 8 ? 0 : 0),
               "rknn_init_extend");
_Static_assert(sizeof(run_extend_t) == 24, "rknn_run_extend");

#endif
