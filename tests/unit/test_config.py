"""The operator's settings: the environment, then flags; every default in OperatorConfig."""

from __future__ import annotations

import pytest

from azure_edition_operator.__main__ import _kopf_defaults, main
from azure_edition_operator.config import OperatorConfig


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in os.environ:
        if name.startswith("AEO_") or name == "POD_NAMESPACE":
            monkeypatch.delenv(name)


def test_the_environment_as_the_deployment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AEO_NAMESPACES": "team-a,team-*",
        "AEO_SINGLE_TENANT": "",  # config.env leaves some empty: the default then
        "AEO_PEERING": "",
        "AEO_KUBE_RETRY_CAP": "30",
        "AEO_LOG_LEVEL": "debug",
        "POD_NAMESPACE": "ops",
    }.items():
        monkeypatch.setenv(name, value)
    config = OperatorConfig()
    assert config.namespaces == ("team-a", "team-*")
    assert (config.single_tenant, config.peering, config.kube_retry_cap) == (False, "", 30.0)
    assert (config.log_level, config.credentials_namespace) == ("DEBUG", "ops")
    monkeypatch.setenv("AEO_CREDENTIALS_NAMESPACE", "creds")
    assert OperatorConfig().credentials_namespace == "creds"


def test_kopf_options_default_from_the_settings() -> None:
    defaults = _kopf_defaults(OperatorConfig(namespaces=("a",), peering="p", health_address="127.0.0.1:1"))
    assert defaults == {
        "namespaces": ("a",),
        "peering_name": "p",
        "priority": 0,
        "liveness_endpoint": "http://127.0.0.1:1/healthz",
        "log_format": "full",
    }
    off = _kopf_defaults(OperatorConfig(health_address="", log_format="json"))
    assert (off["peering_name"], off["liveness_endpoint"], off["log_format"]) == (None, None, "json")


def test_a_bad_variable_stops_the_operator_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEO_MAX_CONCURRENT_RECONCILES", "0")
    with pytest.raises(SystemExit, match="AEO_MAX_CONCURRENT_RECONCILES='0'"):
        main([])


def test_a_bad_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--progress-report-after=-1"])
    assert exit_.value.code == 2
    assert (
        "AEO_PROGRESS_REPORT_AFTER=-1.0: Input should be greater than or equal to 0"
        in capsys.readouterr().err
    )
