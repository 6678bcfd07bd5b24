"""Local stand-ins for outside services, used by tests that must run without internet."""
