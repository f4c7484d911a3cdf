"""LiteLLM: the model routes the platform can reach (routes.py), the client every part calls models
through (client.py), and the LiteLLM proxy the platform renders and runs (proxy*.py). The `litellm`
package is an optional extra (`pip install 'mlops-nocode[llm]'`), imported only when a model is called."""
