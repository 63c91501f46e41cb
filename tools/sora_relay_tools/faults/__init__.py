"""Fault drills: the pipeline run with a crash injected at each outbound call in turn.

Runs on the local stack (moto in process, the simulator as the provider), on a virtual
clock, stepping the functions one invocation at a time. Not shipped in the Lambda layer.
"""
