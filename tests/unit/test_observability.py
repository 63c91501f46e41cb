import json

from sora_relay.observability import PowertoolsMetrics, metrics


def test_count_with_a_dimension_is_also_counted_under_the_service(capsys) -> None:
    PowertoolsMetrics().count("JobsFailed", code="expired")
    metrics.flush_metrics()
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    dimension_sets = sorted(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] for record in records)
    assert dimension_sets == [["code"], ["service"]]
    assert all(record["JobsFailed"] == [1.0] for record in records)
