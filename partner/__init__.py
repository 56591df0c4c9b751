"""A partner's client for the hub: publishing signed events and reading deliveries."""
