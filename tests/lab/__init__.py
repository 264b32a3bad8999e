"""The board lab: emulated aarch64 Rockchip boards reached over real SSH.

Everything here runs as root on the test machine. Boards live in network
namespaces on a private bridge; their userland is a Debian arm64 root
filesystem run under qemu-user. Rockchip's own binaries (librknnrt.so,
rknn_server) cannot exist here, so the lab builds clearly labelled stand-ins
that carry the real version strings (see ../shared/RKNN-NOTES.md §3).
"""
