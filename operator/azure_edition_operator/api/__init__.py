"""The AzureEditionVM API (v1alpha1) as pydantic models, and the CRD generated from them."""
