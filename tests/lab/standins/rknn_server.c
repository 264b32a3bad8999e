/*
 * RKDEPLOY LAB STAND-IN for Rockchip's rknn_server. It is NOT the Rockchip server.
 *
 * Behaves as documented for the real one (../shared/RKNN-NOTES.md §2, §3):
 * arguments are ignored (there is no --version), it prints the start banner,
 * and it runs in the foreground listening on the abstract unix socket
 * @transfer_proxy, which the PC toolkit reaches through adb forwarding.
 * It speaks no protocol: a connection is accepted and closed.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SERVER_VERSION
#error "SERVER_VERSION must be defined"
#endif
#ifndef TRANSFER_VERSION
#define TRANSFER_VERSION "2.2.2 (@2024-06-18T03:50:51)"
#endif

/* From 1.5.2 on the binary carries "rknn_server version: ..."; older ones only the bare version. */
#ifdef MODERN_VERSION_STRING
__attribute__((used)) const char rknn_server_version_string[] = "rknn_server version: " SERVER_VERSION;
#else
__attribute__((used)) const char rknn_server_version_string[] = SERVER_VERSION;
#endif
__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not Rockchip's rknn_server, built by tests/lab/sdk.py";

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("start rknn server, version:%s\n", SERVER_VERSION);
    printf("I NPUTransfer(%d): Starting NPU Transfer Server, Transfer version %s\n", (int)getpid(), TRANSFER_VERSION);
    fflush(stdout);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    const char name[] = "transfer_proxy";
    memcpy(addr.sun_path + 1, name, sizeof name - 1); /* leading NUL: abstract namespace */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof name - 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, 8) < 0) {
        fprintf(stderr, "E NPUTransfer: bind @transfer_proxy failed: %s\n", strerror(errno));
        return 1;
    }
    for (;;) {
        int client = accept(fd, NULL, NULL);
        if (client >= 0)
            close(client);
    }
}
