"""/api/v1/secrets: set, list (names and times only) and delete the secrets runs use as
`${{ secrets.NAME }}`. Values are write-only: no route returns them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from mlops_nocode.api.schemas import SecretIn, SecretOut
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.vault import SecretRefused
from mlops_nocode.spec import Problem, SpecError

router = APIRouter(prefix="/secrets", tags=["secrets"])
Name = Path(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$", description="as in ${{ secrets.NAME }}")


@router.get("", response_model=list[SecretOut])
def list_secrets(gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Every secret's name and when it was set (never the values)."""
    return [s.to_json() for s in gw.secrets.infos()]


@router.put("/{name}", response_model=SecretOut, responses={201: {"description": "created"}})
def put_secret(
    body: SecretIn, response: Response, name: str = Name, gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """Set or replace a secret (201 when new, 200 when replaced); stored encrypted. Refused (422): a
    value shorter than 4 characters (it could not be redacted from logs and outputs), longer than 64 KiB,
    or holding a NUL character (no step process could be given it)."""
    try:
        info, created = gw.secrets.put(name, body.value)
    except SecretRefused as e:
        raise SpecError(Problem(e.what, "body.value", e.fix)) from None
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from None
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return info.to_json()


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "no such secret"}}
)
def delete_secret(name: str = Name, gw: Gateway = Depends(gateway)) -> Response:
    """Forget a secret (runs that reference it then fail, saying it is not set)."""
    if not gw.secrets.delete(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no secret {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
