"""Where the platform keeps its files: MLOPS_HOME (default ~/.mlops-nocode).

The helper lives in the catalogue layer (which needs it too and sits below runtime); re-exported here.
"""

from __future__ import annotations

from mlops_nocode.catalogue.home import mlops_home

__all__ = ["mlops_home"]
