"""Windmill: pipelines rendered as Windmill flows (OpenFlow) and back, the blueprint's deployment assets
(scripts, flow, app), and their sync to a workspace through Windmill's REST API."""
