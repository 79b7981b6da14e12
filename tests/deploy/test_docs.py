"""docs/deploy.md documents every setting and every metric the service really has."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.helpers import ROOT, settings_env_names

DOC = (ROOT / "docs" / "deploy.md").read_text()


def table_names(pattern: str) -> set[str]:
    """First-column names of the markdown table rows matching pattern."""
    return set(re.findall(rf"^\| `({pattern})` \|", DOC, flags=re.MULTILINE))


def test_configuration_table_lists_exactly_the_settings():
    assert table_names(r"VAE_\w+") == settings_env_names()


@pytest.mark.slow
def test_metrics_table_lists_exactly_the_exposed_series(exposition):
    families = {
        f.name + ("_total" if f.type == "counter" else "")
        for f in text_string_to_metric_families(exposition)
        if f.name.startswith("vae_") and not f.name.endswith("_created")
    }
    assert table_names(r"vae_\w+") == families
