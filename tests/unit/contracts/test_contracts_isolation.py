from __future__ import annotations

import subprocess
import sys

HUB_RUNTIME_PACKAGES = ("faststream", "aiokafka", "asyncpg")


def test_importing_contracts_pulls_in_no_hub_runtime_package() -> None:
    script = (
        "import sys, contracts, contracts.schemas; "
        f"print(','.join(m for m in {HUB_RUNTIME_PACKAGES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
