"""The HTTP gateway: FastAPI app factory (`create_app`) and one router per resource."""
