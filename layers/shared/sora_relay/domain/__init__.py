"""The domain: requests, jobs, events, the provider's records, the rules, and the ports the services need."""
