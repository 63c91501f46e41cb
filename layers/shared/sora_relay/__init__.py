"""sora-relay: a queue in front of GeminiGen's Sora API, archiving every video to S3."""
