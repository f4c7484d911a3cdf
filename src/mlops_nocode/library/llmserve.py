"""The `serve-llm` playbook's service process: runs vLLM or Ollama on the port the serve runtime gives
(MLOPS_SERVE_HOST / MLOPS_SERVE_PORT), so that its OpenAI-compatible API answers at <url>/v1.

    python -m mlops_nocode.library.llmserve --engine vllm|ollama --model NAME [--args "EXTRA FLAGS"]

vLLM: `vllm serve MODEL --host H --port P --served-model-name MODEL EXTRA...` replaces this process.
Ollama: `ollama serve` (OLLAMA_HOST=H:P) runs as a child; once it answers, `ollama pull MODEL` fetches the
model, then this process waits for the server (SIGTERM reaches it through the process group).
A missing program ends the process at once with a message naming what to install.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request

INSTALL = {
    "vllm": "vLLM is not installed on this machine: install it on a machine with an NVIDIA GPU "
    "(pip install vllm, https://docs.vllm.ai), or choose engine ollama",
    "ollama": "Ollama is not installed on this machine: install it (https://ollama.com/download, "
    "curl -fsSL https://ollama.com/install.sh | sh), or choose engine vllm",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llmserve")
    parser.add_argument("--engine", choices=sorted(INSTALL), required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--args", default="")
    ns = parser.parse_args(argv)
    if not ns.model or ns.model.startswith("-"):
        print(f"model {ns.model!r}: give a model name (e.g. Qwen/Qwen2.5-0.5B-Instruct)", file=sys.stderr)
        return 2
    host = os.environ.get("MLOPS_SERVE_HOST", "127.0.0.1")
    port = os.environ.get("MLOPS_SERVE_PORT", "8000")
    exe = shutil.which(ns.engine)
    if exe is None:
        print(INSTALL[ns.engine], file=sys.stderr, flush=True)
        return 127
    try:
        extra = shlex.split(ns.args)
    except ValueError as e:
        print(f"engine_args {ns.args[:200]!r}: {e} (write flags as on a shell line)", file=sys.stderr)
        return 2
    taken = [a for a in extra if a.split("=")[0] in ("--host", "--port", "--served-model-name")]
    if taken:
        print(
            f"engine_args may not set {', '.join(taken)}: the platform chooses where the service listens "
            "(127.0.0.1 and a free port) and the model's name",
            file=sys.stderr,
        )
        return 2
    if ns.engine == "vllm":
        cmd = [
            exe,
            "serve",
            ns.model,
            "--host",
            host,
            "--port",
            port,
            "--served-model-name",
            ns.model,
            *extra,
        ]
        print("running: " + shlex.join(cmd), flush=True)
        os.execv(exe, cmd)
    env = {**os.environ, "OLLAMA_HOST": f"{host}:{port}"}
    server = subprocess.Popen([exe, "serve", *extra], env=env)
    deadline = time.monotonic() + 120
    while server.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{host}:{port}/", timeout=2).close()
            break
        except OSError:
            time.sleep(0.5)
    if server.poll() is None:
        pulled = subprocess.run([exe, "pull", ns.model], env=env, check=False).returncode
        if pulled != 0:
            print(f"ollama pull {ns.model} exited with code {pulled}", file=sys.stderr, flush=True)
            server.terminate()
            server.wait()
            return pulled
    return server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
