"""Which FHIR reads `fhirAuthorization.scope` allows, in SMART v1 and v2 syntax alike.

CDS Hooks 3.0 (ballot) follows SMART App Launch 2, whose scopes name interactions by letter
(`patient/Observation.rs`: read and search) where v1 named them by word (`patient/Observation.read`).
The service reads (`r`: `Patient/{id}`) and searches (`s`: `Condition?patient=…`); a fetch the scope does
not allow is not sent, and its data category becomes a gap like any other unavailable data.

- v1: `patient|user|system/<Type|*>.<read|*>` allows read and search; `.write` allows neither.
- v2: `patient|user|system/<Type|*>.<c?r?u?d?s?>`, optionally `?param=value` (a granular scope: the FHIR
  server narrows the results; the fetch itself is allowed).
Other tokens (`openid`, `launch/patient`, `fhirUser`, `offline_access`) grant no resource access.
"""

from __future__ import annotations

import re
from typing import Literal

Interaction = Literal["r", "s"]
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Za-z]+)\.([a-z*]+)(\?.*)?$")
_V2_PERMISSIONS = re.compile(r"^c?r?u?d?s?$")


def allows(scope: str, resource_type: str, interaction: Interaction) -> bool:
    """Whether any scope in the space-separated `scope` allows `interaction` on `resource_type`."""
    for token in scope.split():
        match = _SCOPE.match(token)
        if match is None:
            continue
        _, resource, permissions, _ = match.groups()
        if resource not in ("*", resource_type):
            continue
        if permissions in ("read", "*"):
            return True
        if permissions != "write" and _V2_PERMISSIONS.match(permissions) and interaction in permissions:
            return True
    return False


def fetch_allowed(scope: str, template: str, query: str) -> bool:
    """Whether `scope` allows the fetch `query` of the prefetch key whose template is `template`.

    The resource type is the template's (`Condition?patient=…` → Condition); `Type/id` is a read, anything
    else a search, and so is a next link, whose URL may not name the type (`…/fhir?_getpages=…`)."""
    resource_type = re.split(r"[/?]", template, maxsplit=1)[0]
    is_read = "?" not in query and not query.startswith(("http://", "https://"))
    return allows(scope, resource_type, "r" if is_read else "s")
