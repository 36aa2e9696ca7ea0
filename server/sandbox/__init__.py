"""A local stand-in for WeChat, for development, demos, tests and benchmarks."""

from .app import make_sandbox_app, start_sandbox, stop_sandbox
from .state import Fault, Follower, Sandbox

__all__ = ["Fault", "Follower", "Sandbox", "make_sandbox_app", "start_sandbox",
           "stop_sandbox"]
