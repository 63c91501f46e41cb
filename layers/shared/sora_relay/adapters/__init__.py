"""Adapters: the ports on boto3 and httpx."""
