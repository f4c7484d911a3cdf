"""Bridges to the tools the platform works with: LiteLLM (model routes, the proxy, the client)."""
