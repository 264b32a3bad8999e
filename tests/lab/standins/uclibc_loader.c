/*
 * RKDEPLOY LAB STAND-IN for uClibc's program loader /lib/ld-uClibc.so.0. It is NOT uClibc.
 *
 * RV1103/RV1106 boards run uClibc; Debian (the lab's source of packages) has none, and Rockchip's
 * armhf-uclibc binaries cannot run without it (qemu-arm: "Could not open '/lib/ld-uClibc.so.0'").
 * This file stands at that path on the lab's `libc: uclibc` boards (so the probe finds a uClibc board)
 * and is started by the kernel (here qemu-arm) as the interpreter of every uClibc program. It loads
 * nothing: it executes /etc/rkdeploy-lab/uclibc/<program's name> with the same arguments and environment
 * (for rknn_server: a labelled stand-in process, so that the board's rknn_server "runs"), or says that the
 * program cannot run in the lab and exits 127. No libc: raw system calls, linked away from 0x10000 where
 * the program itself is mapped.
 */
#define AT_EXECFN 31
#define PREFIX "/etc/rkdeploy-lab/uclibc/"

static long sys3(long n, long a, long b, long c) {
    register long r7 __asm__("r7") = n;
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    __asm__ volatile("svc 0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2) : "memory");
    return r0;
}

static void say(const char *s) {
    long n = 0;
    while (s[n]) n++;
    sys3(4, 2, (long)s, n);                     /* write(2, ...) */
}

__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not uClibc's ld-uClibc.so.0, built by tests/lab/fleet.py";

__attribute__((used, noreturn)) void rkd_entry(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    char **e = envp;
    while (*e) e++;
    const char *file = argv[0];
    for (long *aux = (long *)(e + 1); aux[0]; aux += 2)
        if (aux[0] == AT_EXECFN) file = (const char *)aux[1];
    const char *base = file;
    for (const char *p = file; *p; p++)
        if (*p == '/') base = p + 1;
    char path[256];
    int i = 0;
    for (const char *p = PREFIX; *p; p++) path[i++] = *p;
    for (const char *p = base; *p && i < 255; p++) path[i++] = *p;
    path[i] = 0;
    sys3(11, (long)path, (long)argv, (long)envp);      /* execve: returns only on failure */
    say("ld-uClibc.so.0 (rkdeploy lab stand-in): ");
    say(file);
    say(" is a uClibc program and cannot run in this lab (no uClibc here)\n");
    sys3(248, 127, 0, 0);                               /* exit_group(127) */
    for (;;) {}
}

__attribute__((naked, noreturn)) void _start(void) {
    __asm__ volatile("mov r0, sp\n\tbl rkd_entry\n");
}
