"""providers.schema.json documents providers.json: the shipped file must validate, and
the schema must reject what Switchyard rejects."""

import copy
import json

import jsonschema
import pytest

from conftest import REPO

SCHEMA = json.loads((REPO / "providers.schema.json").read_text())
SHIPPED = json.loads((REPO / "providers.json").read_text())


def test_schema_is_valid_and_accepts_the_shipped_configuration():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(SHIPPED, SCHEMA)


@pytest.mark.parametrize("mutate", [
    lambda c: c["providers"][0].update(kind="opnai"),
    lambda c: c["providers"][1].update(colour="red"),
    lambda c: c["providers"][1].pop("base_url"),
    lambda c: c["providers"][0].pop("engine_pool"),
    lambda c: c["engine_pools"][0]["replicas"][0].update(slots=0),
    lambda c: c["prices"]["local-llama-8b"].update(output_per_million=1.5),
    lambda c: c["tiers"][0].update(priority="high"),
    lambda c: c.update(tiers=[]),
    lambda c: c["tiers"][0].update(reserved_share=1.5),
    lambda c: c["tiers"][0].update(spill_over="always"),
    lambda c: c["tiers"][0].update(weight=0),
    lambda c: c["models"][0].update(routing="cheapest"),
    lambda c: c["engine_pools"][0].update(max_queue=-1),
    lambda c: c["engine_pools"][0].update(cost_per_hour=-1),
    lambda c: c["engine_pools"][0].update(cost_per_hour=1.5),
])
def test_schema_rejects_what_switchyard_rejects(mutate):
    broken = copy.deepcopy(SHIPPED)
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
