"""Print an SPDX 2.3 JSON software bill of materials for the image this runs in (stdlib only).

hack/image/build.sh pipes this file into `python -` inside the freshly built image: the packages
listed are the ones really there — Debian's (from the dpkg database) and Python's (from the
virtualenv's metadata) — each with a package URL.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path


def debian_packages(status: Path = Path("/var/lib/dpkg/status")) -> list[dict]:
    """Installed Debian packages from dpkg's status file."""
    packages = []
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            packages.append(fields)
    return packages


def spdx_id(kind: str, name: str, version: str) -> str:
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", f"{kind}-{name}-{version}")


def main() -> None:
    image = os.environ.get("SBOM_IMAGE", "unknown")
    packages = []
    for deb in debian_packages():
        name, version, arch = deb["Package"], deb["Version"], deb.get("Architecture", "all")
        packages.append(
            {
                "SPDXID": spdx_id("deb", name, version),
                "name": name,
                "versionInfo": version,
                "supplier": "Organization: Debian",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:deb/debian/{name}@{version}?arch={arch}",
                    }
                ],
            }
        )
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name, version = dist.metadata["Name"], dist.version
        packages.append(
            {
                "SPDXID": spdx_id("pypi", name, version),
                "name": name,
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseDeclared": "NOASSERTION",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:pypi/{re.sub(r'[-_.]+', '-', name).lower()}@{version}",
                    }
                ],
            }
        )
    image_id = os.environ.get("SBOM_IMAGE_ID", "")
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image,
        "documentNamespace": f"https://azureedition.io/spdx/{image.replace(':', '/')}/{image_id or hashlib.sha256(image.encode()).hexdigest()}",
        "creationInfo": {
            "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Tool: azure-edition-operator hack/image/sbom.py"],
        },
        "comment": f"Image ID {image_id}",
        "packages": packages,
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": p["SPDXID"],
            }
            for p in packages
        ],
    }
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
