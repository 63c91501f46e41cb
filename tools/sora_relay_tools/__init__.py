"""sora-relay's tools: the Python client and the `sora-relay` command, the local stack, the
GeminiGen simulator and the fault drills. None of it ships in the Lambda layer."""
