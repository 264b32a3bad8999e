/* LAB ADAPTATION (rkdeploy, tests/lab): not part of any board image.
 *
 * An emulated lab board's /proc is the host kernel's procfs, which has no /proc/device-tree (the host is an
 * x86 VM without a device tree); the board's device tree lives at /sys/firmware/devicetree/base, which is
 * what /proc/device-tree links to on a real board. rknn-toolkit-lite2 opens /proc/device-tree/compatible to
 * learn the SoC and refuses to load librknnrt.so without it ("Please specify the target in init_runtime!",
 * then "Unsupported run platform: Linux aarch64"). This preload library, listed in the lab board's
 * /etc/ld.so.preload, rewrites path arguments that start with /proc/device-tree to
 * /sys/firmware/devicetree/base in the libc calls that open, stat or test a path. Nothing else changes.
 * RKDEPLOY_DTMAP_LOG=FILE appends one line per rewrite to FILE.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char FROM[] = "/proc/device-tree";
static const char TO[] = "/sys/firmware/devicetree/base";

static const char *map(const char *path, char *buf, size_t cap) {
    size_t n = sizeof FROM - 1;
    if (!path || strncmp(path, FROM, n) != 0 || (path[n] != 0 && path[n] != '/')) return path;
    if ((size_t)snprintf(buf, cap, "%s%s", TO, path + n) >= cap) return path;
    const char *log = getenv("RKDEPLOY_DTMAP_LOG");
    if (log) {
        int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        int fd = real_open ? real_open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (fd >= 0) { dprintf(fd, "%d %s -> %s\n", (int)getpid(), path, buf); close(fd); }
    }
    return buf;
}

#define REAL(name, ...) typedef __VA_ARGS__; static fn_t real; if (!real) real = (fn_t)dlsym(RTLD_NEXT, name)
#define MODE_ARG(flags) mode_t mode = 0; if ((flags) & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

int open(const char *p, int flags, ...) {
    MODE_ARG(flags); char b[4096]; REAL("open", int (*fn_t)(const char *, int, ...)); return real(map(p, b, sizeof b), flags, mode);
}
int open64(const char *p, int flags, ...) {
    MODE_ARG(flags); char b[4096]; REAL("open64", int (*fn_t)(const char *, int, ...)); return real(map(p, b, sizeof b), flags, mode);
}
int openat(int d, const char *p, int flags, ...) {
    MODE_ARG(flags); char b[4096]; REAL("openat", int (*fn_t)(int, const char *, int, ...)); return real(d, map(p, b, sizeof b), flags, mode);
}
int openat64(int d, const char *p, int flags, ...) {
    MODE_ARG(flags); char b[4096]; REAL("openat64", int (*fn_t)(int, const char *, int, ...)); return real(d, map(p, b, sizeof b), flags, mode);
}
int __open_2(const char *p, int flags) { return open(p, flags); }
int __open64_2(const char *p, int flags) { return open64(p, flags); }
int __openat_2(int d, const char *p, int flags) { return openat(d, p, flags); }
int __openat64_2(int d, const char *p, int flags) { return openat64(d, p, flags); }
FILE *fopen(const char *p, const char *m) { char b[4096]; REAL("fopen", FILE *(*fn_t)(const char *, const char *)); return real(map(p, b, sizeof b), m); }
FILE *fopen64(const char *p, const char *m) { char b[4096]; REAL("fopen64", FILE *(*fn_t)(const char *, const char *)); return real(map(p, b, sizeof b), m); }
int access(const char *p, int m) { char b[4096]; REAL("access", int (*fn_t)(const char *, int)); return real(map(p, b, sizeof b), m); }
int faccessat(int d, const char *p, int m, int f) { char b[4096]; REAL("faccessat", int (*fn_t)(int, const char *, int, int)); return real(d, map(p, b, sizeof b), m, f); }
int stat(const char *p, struct stat *s) { char b[4096]; REAL("stat", int (*fn_t)(const char *, struct stat *)); return real(map(p, b, sizeof b), s); }
int lstat(const char *p, struct stat *s) { char b[4096]; REAL("lstat", int (*fn_t)(const char *, struct stat *)); return real(map(p, b, sizeof b), s); }
int stat64(const char *p, struct stat64 *s) { char b[4096]; REAL("stat64", int (*fn_t)(const char *, struct stat64 *)); return real(map(p, b, sizeof b), s); }
int lstat64(const char *p, struct stat64 *s) { char b[4096]; REAL("lstat64", int (*fn_t)(const char *, struct stat64 *)); return real(map(p, b, sizeof b), s); }
int fstatat(int d, const char *p, struct stat *s, int f) { char b[4096]; REAL("fstatat", int (*fn_t)(int, const char *, struct stat *, int)); return real(d, map(p, b, sizeof b), s, f); }
int fstatat64(int d, const char *p, struct stat64 *s, int f) { char b[4096]; REAL("fstatat64", int (*fn_t)(int, const char *, struct stat64 *, int)); return real(d, map(p, b, sizeof b), s, f); }
DIR *opendir(const char *p) { char b[4096]; REAL("opendir", DIR *(*fn_t)(const char *)); return real(map(p, b, sizeof b)); }
