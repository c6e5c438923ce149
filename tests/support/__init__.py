"""Test support code: harnesses shared by the integration tests."""
