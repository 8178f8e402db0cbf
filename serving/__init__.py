"""Serving many streams beyond one process: Triton Inference Server repositories, a launcher
for a real ``tritonserver``, and the Python-backend model they run. The client with the Stream
API is :mod:`edgernn.runtime.remote`."""

from edgernn.serving.repository import BACKENDS, Options, config_text, write_repository
from edgernn.serving.server import Server, ServerError, find_server

__all__ = ["BACKENDS", "Options", "Server", "ServerError", "config_text", "find_server",
           "write_repository"]
