"""The edge: FastAPI app, CDS Hooks routes, EHR trust, prefetch and FHIR fetch, storage."""
