"""Harness shared by the tests and the benchmark: a real FHIR server and service processes on 127.0.0.1.

Not part of the service: the wheel does not ship it, and the runtime packages never import it.
"""
