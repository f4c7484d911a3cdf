"""Tell people a deployment ended: a JSON message posted to a Slack-compatible incoming webhook (Slack,
Mattermost, Rocket.Chat, an n8n or Windmill webhook). No URL: nothing is sent."""

import json
import urllib.request


def main(webhook_url: str = "", pipeline: str = "", run_id: str = "", status: str = "", details: str = "") -> dict:
    text = f"MLOps pipeline {pipeline}: run {run_id} {status}" + (f" ({details})" if details else "")
    if not webhook_url:
        return {"sent": False, "text": text}
    if not webhook_url.startswith(("http://", "https://")):
        raise ValueError("webhook_url must start with http:// or https://")
    body = {"text": text, "pipeline": pipeline, "run_id": run_id, "status": status, "details": details}
    request = urllib.request.Request(
        webhook_url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return {"sent": True, "http_status": answer.status, "text": text}
