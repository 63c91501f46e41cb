"""template.yaml, read as CloudFormation reads it (its short-form tags included)."""

from typing import Any

from cfnlint.decode import cfn_yaml

from .paths import TEMPLATE


def load_template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))
