"""The domain: what happens to a job, free of any SDK."""
