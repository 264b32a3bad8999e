"""Scripts that run ON a board (sent over SSH to the board's own Python), not imported by rkdeploy."""
