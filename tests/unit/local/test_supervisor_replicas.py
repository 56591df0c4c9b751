"""Process names of a service's replicas, and the service each one runs."""

from __future__ import annotations

import pytest

from hub.errors import ConfigurationError
from hub.local.supervisor import Supervisor, replica_name, service_of
from hub.runtime.settings import HubSettings


def test_the_first_replica_keeps_the_services_name_and_the_others_are_numbered() -> None:
    assert [replica_name("registry", n) for n in (1, 2, 3)] == ["registry", "registry-2", "registry-3"]


@pytest.mark.parametrize("service", ["identity", "registry", "notifications"])
def test_every_replica_runs_its_service(service: str) -> None:
    assert {service_of(replica_name(service, n)) for n in range(1, 5)} == {service}


def test_a_name_with_a_dash_that_is_no_replica_number_is_left_whole() -> None:
    assert service_of("registry-blue") == "registry-blue"


def test_a_hub_without_a_process_per_service_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        Supervisor(HubSettings(), replicas=0)
