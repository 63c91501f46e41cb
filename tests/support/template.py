"""template.yaml, read as CloudFormation reads it (its short-form tags included)."""

from typing import Any

from .paths import TEMPLATE


def load_template() -> dict[str, Any]:
    # Imported here: cfn-lint loads sympy and networkx (most of a second), and every worker
    # collects the modules that import this one.
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))
