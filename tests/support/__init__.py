"""Helpers shared by the tests: real Postgres servers, worker processes, polling."""
