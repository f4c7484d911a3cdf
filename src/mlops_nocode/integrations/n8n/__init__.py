"""n8n: workflows that drive our gateway, pushed through n8n's API; pipelines as workflows and back."""
