"""Channel adapters: the one contract every chat platform plugs in through, and their registry."""
