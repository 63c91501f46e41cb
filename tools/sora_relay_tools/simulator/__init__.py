"""A double of GeminiGen's Sora API: a real HTTP server for tests, benchmarks and local runs."""

from sora_relay_tools.simulator.server import Fault, GeminiGenSimulator, Generation, ManualClock

__all__ = ["Fault", "GeminiGenSimulator", "Generation", "ManualClock"]
