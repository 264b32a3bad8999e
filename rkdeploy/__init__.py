"""rkdeploy: provision, check, deploy to and profile fleets of Rockchip NPU boards."""
__version__ = "0.1.0"
