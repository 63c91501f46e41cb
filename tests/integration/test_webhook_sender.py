"""Webhooks' way out, against a TLS server on loopback that DNS does not know: only https to a
public address, checked before the request and again when connecting, no redirect followed; and
the topic's filter, which routes only events of requests that name a callback."""

import json
import socket

import boto3
import pytest
from moto import mock_aws

from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.webhooks import CallbackPolicy, HttpWebhookSender
from sora_relay.domain.webhooks import CallbackRefused, CallbackUnreachable

from ..support.aws import REGION
from ..support.https_origin import Answer, HttpsOrigin
from ..support.template import load_template
from .test_downloads import LOOPBACK, Rebinding, loopback_is_public

BODY = '{"event": "video.completed"}'


def sender(origin: HttpsOrigin, resolver=lambda host: [LOOPBACK], allow_private: bool = False) -> HttpWebhookSender:  # type: ignore[no-untyped-def]
    policy = CallbackPolicy(allow_private=allow_private, resolver=resolver, public=loopback_is_public)
    return HttpWebhookSender(vetted_client(policy, verify=origin.client_ssl(), timeout=5, follow_redirects=False))


def test_a_webhook_reaches_a_public_https_address_with_its_headers_and_body(https_origin) -> None:
    https_origin.answers["/hooks"] = Answer(status=204)
    status = sender(https_origin).post(https_origin.url("cdn.test", "/hooks"), {"webhook-id": "e-1"}, BODY)
    assert status == 204
    [seen] = https_origin.seen
    assert (seen.host, seen.headers["webhook-id"], seen.body) == (f"cdn.test:{https_origin.port}", "e-1", BODY.encode())


def test_a_callback_to_a_private_address_is_refused_and_never_called(https_origin) -> None:
    with pytest.raises(CallbackRefused, match=r"non-public address \(10\.1\.2\.3\)"):
        sender(https_origin, resolver=lambda host: ["10.1.2.3"]).post(https_origin.url("cdn.test", "/hooks"), {}, BODY)
    assert https_origin.seen == []


def test_a_callback_that_rebinds_to_a_private_address_after_the_check_is_refused_when_connecting(https_origin) -> None:
    resolver = Rebinding(first=LOOPBACK, then="169.254.169.254")
    with pytest.raises(CallbackRefused, match=r"169\.254\.169\.254"):
        sender(https_origin, resolver).post(https_origin.url("cdn.test", "/hooks"), {}, BODY)
    assert https_origin.seen == []


def test_a_callback_over_http_is_refused_unless_the_stack_allows_private_receivers(https_origin) -> None:
    with pytest.raises(CallbackRefused, match="https addresses only"):
        sender(https_origin).post(f"http://cdn.test:{https_origin.port}/hooks", {}, BODY)
    assert CallbackPolicy(allow_private=True).problem("http://127.0.0.1:9/hooks") is None


def test_a_redirect_is_not_followed(https_origin) -> None:
    https_origin.answers["/hooks"] = Answer(status=307)
    assert sender(https_origin).post(https_origin.url("cdn.test", "/hooks"), {}, BODY) == 307
    assert len(https_origin.seen) == 1


def test_a_receiver_that_does_not_answer_is_unreachable(https_origin) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(CallbackUnreachable):
        sender(https_origin).post(f"https://cdn.test:{port}/hooks", {}, BODY)


def test_the_topic_routes_only_events_of_requests_that_name_a_callback(aws_credentials) -> None:
    subscription = load_template()["Resources"]["WebhookSubscription"]["Properties"]
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="completions")["TopicArn"]
        queue = sqs.create_queue(QueueName="webhooks")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {
            "RawMessageDelivery": "true",
            "FilterPolicyScope": subscription["FilterPolicyScope"],
            "FilterPolicy": json.dumps(subscription["FilterPolicy"]),
        }
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        with_callback = {"event_id": "a", "request": {"prompt": "p", "callback_url": "https://hooks.example/x"}}
        for body in (with_callback, {"event_id": "b", "request": {"prompt": "p"}}, {"event_id": "c"}):
            sns.publish(TopicArn=topic, Message=json.dumps(body))
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        assert [json.loads(message["Body"])["event_id"] for message in messages] == ["a"]
