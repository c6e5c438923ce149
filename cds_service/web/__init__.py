"""HTTP plumbing: errors as OperationOutcomes, JSON responses, logging, metrics, request timing,
security headers; outgoing requests (the one pooled client, the one URL policy)."""
