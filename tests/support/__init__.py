"""What the tiers share: paths, the moto stack, plain fakes of the ports, and local-stack helpers.

Fixtures stay in each tier's conftest.py; the helpers they build on live here, so no test
imports from a conftest and no tier loads what it does not use (unit tests load neither moto
nor cfn-lint)."""
