"""A hook call from request to response: wire models, discovery, the flow, gathering the patient's
data (prefetch, FHIR fetches), JSON limits, the mapping and answer caches, feedback."""
