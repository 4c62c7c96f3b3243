"""The test and benchmark harness: start `persona-agent serve` as a child process on loopback."""

from harness.launch import LiveServer, free_port, live_server, metric_sum

__all__ = ["LiveServer", "free_port", "live_server", "metric_sum"]
