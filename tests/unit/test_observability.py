import json

from sora_relay.observability import LazyTracer, PowertoolsMetrics, metrics


def test_count_with_a_dimension_is_also_counted_under_the_service(capsys) -> None:
    metrics.clear_metrics()  # what other tests in this process counted
    PowertoolsMetrics().count("JobsFailed", code="expired")
    metrics.flush_metrics()
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    dimension_sets = sorted(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] for record in records)
    assert dimension_sets == [["code"], ["service"]]
    assert all(record["JobsFailed"] == [1.0] for record in records)


class CountedTracer(LazyTracer):
    made = 0

    def _tracer(self):
        CountedTracer.made += 1
        return super()._tracer()


def test_tracer_is_made_once_by_the_first_traced_invocation(monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    CountedTracer.made = 0
    handler = CountedTracer("sora-relay").capture_lambda_handler(lambda event, context: event["n"])
    assert CountedTracer.made == 0
    assert [handler({"n": n}, None) for n in (1, 2)] == [1, 2]
    assert CountedTracer.made == 1


def test_tracer_is_never_made_while_tracing_is_off(monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    CountedTracer.made = 0
    handler = CountedTracer("sora-relay").capture_lambda_handler(lambda event, context: event["n"])
    assert handler({"n": 3}, None) == 3
    assert CountedTracer.made == 0
