"""The HTTP API's service with plain fakes: keys, ownership, idempotency, the queue as the one way
in, OpenAI's fields through the catalogue, and what a lost send or a delete does."""

import json
from datetime import timedelta

import pytest

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.events import ErrorCode
from sora_relay.domain.jobs import JobState
from sora_relay.domain.keys import ApiKey
from sora_relay.domain.videos import ApiError, Upload, form_fields, request_message
from sora_relay.services.submit.messages import InboundMessage
from sora_relay_tools.client.keys import create_key

URL = "https://cdn.geminigen.ai/v/1.mp4"


def bearer(world, name: str) -> ApiKey:
    return world.videos.authenticate(f"Bearer {create_key(world.keys, name)}")


@pytest.fixture
def alice(world) -> ApiKey:
    return bearer(world, "alice")


def refused(call, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as error:
        call(*args, **kwargs)
    return error.value


def complete(world, request_id: str, **record: object) -> None:
    """Its message delivered, its generation finished and archived, as the stack does it."""
    world.deliver_starts()
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=2, generated_video=[{"video_url": URL}], **record)]
    world.poller.sweep()
    world.archiver.archive_job(request_id)


def test_a_request_is_claimed_for_its_key_queued_and_submitted_once_from_the_queue(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox", "model": "veo-3.1-fast", "seconds": "4"}, [])
    assert (video.status, video.model, video.seconds, video.size) == ("queued", "veo-3.1-fast", "4", "1280x720")
    assert world.store.get(video.id).key == "alice"
    assert [request_id for request_id, _ in world.request_queue.resent] == [video.id]
    world.deliver_starts()
    assert [request.prompt for request in world.provider.submitted] == ["a fox"]
    assert world.videos.get(alice, video.id).status == "in_progress"


def test_every_event_of_a_request_made_with_a_key_names_the_key(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    complete(world, video.id)
    assert {event.key for event in world.publisher.published} == {"alice"}
    assert world.videos.get(alice, video.id).status == "completed"


def test_the_same_idempotency_key_and_body_answer_the_same_video_and_queue_it_once(world, alice) -> None:
    first = world.videos.create(alice, {"prompt": "a fox"}, [], "order-1")
    again = world.videos.create(alice, {"prompt": "a fox"}, [], "order-1")
    assert first.id == again.id == "order-1"
    assert len(world.request_queue.resent) == 1


def test_an_idempotency_key_used_with_another_body_or_by_another_key_is_a_conflict(world, alice) -> None:
    world.videos.create(alice, {"prompt": "a fox"}, [], "order-1")
    assert refused(world.videos.create, alice, {"prompt": "a wolf"}, [], "order-1").status == 409
    assert refused(world.videos.create, bearer(world, "bob"), {"prompt": "a fox"}, [], "order-1").status == 409
    assert world.store.get("order-1").key == "alice"


def test_another_key_gets_404_for_every_call_on_a_keys_video(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    bob = bearer(world, "bob")
    for call in (world.videos.get, world.videos.content_url, world.videos.delete):
        assert refused(call, bob, video.id).status == 404
    extend = {"prompt": "and then", "video": {"id": video.id}}
    assert refused(world.videos.extend, bob, extend).status == 404
    assert world.videos.page(bob).data == []
    assert world.store.get(video.id).state is JobState.RECEIVED  # not canceled by bob's delete


def test_a_request_sent_over_sqs_is_no_keys(world, alice) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "sqs-1", "prompt": "a fox"})))
    assert refused(world.videos.get, alice, "sqs-1").status == 404


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic abc", "Bearer sr-not-a-key"])
def test_a_call_without_a_known_key_is_refused_with_401(world, authorization) -> None:
    assert refused(world.videos.authenticate, authorization).status == 401


def test_a_revoked_key_is_refused_with_401(world) -> None:
    secret = create_key(world.keys, "carol")
    world.keys.revoke("carol", world.clock())
    assert refused(world.videos.authenticate, f"Bearer {secret}").status == 401


def test_a_key_past_its_calls_per_minute_gets_429_until_the_next_minute(world) -> None:
    world.api_calls_per_minute = 3
    secret = create_key(world.keys, "dave")
    for _ in range(3):
        world.videos.authenticate(f"Bearer {secret}")
    error = refused(world.videos.authenticate, f"Bearer {secret}")
    assert (error.status, error.code) == (429, "rate_limit_exceeded")
    assert 0 < (error.retry_after or 0) <= 60
    world.clock.advance(timedelta(seconds=error.retry_after or 0))
    assert world.videos.authenticate(f"Bearer {secret}").name == "dave"


def test_a_lost_send_still_answers_queued_and_a_sweep_puts_the_request_on_the_queue(world, alice) -> None:
    sent = world.request_queue.resend
    world.request_queue.resend = lambda *args, **kwargs: (_ for _ in ()).throw(ConnectionError("SQS went away"))
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    assert video.status == "queued"
    world.request_queue.resend = sent
    world.minute(int(world.policy.stale_claim_check(world.clock()).timestamp() - world.clock().timestamp()) // 60 + 1)
    assert [request.prompt for request in world.provider.submitted] == ["a fox"]
    assert world.metrics.counts["ClaimsRequeued"] == 1


def test_a_send_whose_answer_was_lost_and_the_sweeps_resend_make_one_generation(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    world.request_queue.resent.append(world.request_queue.resent[0])  # SQS took it, the answer lost, sent again
    world.deliver_starts()
    assert [request.prompt for request in world.provider.submitted] == ["a fox"]
    assert world.store.get(video.id).state is JobState.SUBMITTED


def test_a_size_the_model_does_not_make_is_a_400_naming_size(world, alice) -> None:
    error = refused(world.videos.create, alice, {"prompt": "a fox", "model": "veo-3.1-fast", "size": "1024x1792"}, [])
    assert (error.status, error.param) == (400, "size")
    assert world.request_queue.resent == []


def test_a_length_the_model_does_not_make_is_a_400_naming_seconds(world, alice) -> None:
    error = refused(world.videos.create, alice, {"prompt": "a fox", "model": "veo-3.1-fast", "seconds": "12"}, [])
    assert (error.status, error.param) == (400, "seconds")
    assert "12" in error.message


def test_a_size_becomes_the_families_own_resolution_and_aspect_ratio() -> None:
    catalogue = Catalogue.bundled()
    assert request_message({"prompt": "p", "model": "sora-2", "size": "720x1280"}, catalogue, "sora-2") == {
        "prompt": "p",
        "model": "sora-2",
        "resolution": "small",
        "aspect_ratio": "portrait",
    }
    kling = request_message({"prompt": "p", "model": "kling-video-2-6", "size": "720x720"}, catalogue, "sora-2")
    assert kling["aspect_ratio"] == "1:1"
    assert "resolution" not in kling


def test_openrouters_fields_are_the_relays_own(world, alice) -> None:
    body = {"prompt": "a fox", "model": "veo-3.1", "duration": 6, "resolution": "1080p", "aspect_ratio": "9:16"}
    video = world.videos.create(alice, body, [])
    request = world.store.get(video.id).request
    assert (request.duration, request.resolution, request.aspect_ratio) == (6, "1080p", "9:16")
    assert video.size == "1080x1920"


def test_a_form_reads_as_a_json_body_would() -> None:
    pairs = [
        ("prompt", "a fox"),
        ("seconds", "8"),
        ("metadata[campaign]", "spring"),
        ("fallback", '["kling-video-2-6"]'),
    ]
    pairs += [("video[id]", "v-1"), ("skip_audio", "true"), ("duration", "6")]
    assert form_fields(pairs) == {
        "prompt": "a fox",
        "seconds": "8",
        "metadata": {"campaign": "spring"},
        "fallback": ["kling-video-2-6"],
        "video": {"id": "v-1"},
        "skip_audio": True,
        "duration": 6,
    }


def test_an_upload_goes_to_the_input_location_as_the_models_reference(world, alice) -> None:
    upload = Upload(filename="robot.png", content_type="image/png", data=b"png")
    video = world.videos.create(alice, {"prompt": "the robot waves", "model": "veo-3.1-fast"}, [upload])
    uri = f"s3://archive/inputs/{video.id}/0.png"
    assert world.objects.inputs == {uri: (b"png", "image/png")}
    assert world.store.get(video.id).request.ref_images == [uri]


def test_an_invalid_request_uploads_nothing(world, alice) -> None:
    upload = Upload(filename="robot.png", content_type="image/png", data=b"png")
    refused(world.videos.create, alice, {"prompt": "the robot waves", "model": "no-such-model"}, [upload])
    assert world.objects.inputs == {}


def test_deleting_a_queued_request_cancels_it_before_any_credit_is_spent(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    assert world.videos.delete(alice, video.id).deleted
    world.deliver_starts()
    assert world.provider.submitted == []
    [event] = world.publisher.finals
    assert (event.error.code, event.key) == (ErrorCode.CANCELED, "alice")


def test_deleting_a_video_the_provider_is_making_is_a_conflict(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    world.deliver_starts()
    assert refused(world.videos.delete, alice, video.id).status == 409


def test_deleting_an_archived_video_removes_its_objects(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    complete(world, video.id)
    assert world.videos.content_url(alice, video.id).startswith("https://")
    world.videos.delete(alice, video.id)
    assert next(key for _, key in world.objects.removed) == f"videos/{video.id}.mp4"


def test_a_thumbnail_is_downloadable_when_one_was_copied_and_404_when_none_was(world, alice) -> None:
    with_one = world.videos.create(alice, {"prompt": "a fox"}, [])
    complete(world, with_one.id, thumbnail_url="https://cdn.geminigen.ai/t/1.jpg")
    assert world.videos.content_url(alice, with_one.id, "thumbnail").startswith("https://")
    without = world.videos.create(alice, {"prompt": "a wolf"}, [])
    complete(world, without.id)
    assert refused(world.videos.content_url, alice, without.id, "thumbnail").status == 404


def test_content_before_the_video_is_archived_is_404(world, alice) -> None:
    video = world.videos.create(alice, {"prompt": "a fox"}, [])
    assert refused(world.videos.content_url, alice, video.id).status == 404
    assert refused(world.videos.content_url, alice, video.id, "spritesheet").status == 400


def test_an_extension_continues_the_keys_earlier_video_with_its_length_where_the_family_takes_one(world, alice) -> None:
    kling = world.videos.create(alice, {"prompt": "a fox runs", "model": "kling-video-2-6"}, [])
    complete(world, kling.id)
    longer = world.videos.extend(alice, {"prompt": "and jumps", "seconds": "8", "video": {"id": kling.id}})
    request = world.store.get(longer.id).request
    assert (request.extend.request_id, request.model, request.duration) == (kling.id, "kling-video-2-6", 8)


def test_a_listing_is_the_keys_own_newest_first_in_pages(world, alice) -> None:
    ids = []
    for n in range(3):
        ids.append(world.videos.create(alice, {"prompt": f"a fox {n}"}, []).id)
        world.clock.advance(timedelta(seconds=1))
    world.videos.create(bearer(world, "bob"), {"prompt": "a wolf"}, [])
    first = world.videos.page(alice, limit=2)
    assert ([video.id for video in first.data], first.has_more) == (ids[::-1][:2], True)
    rest = world.videos.page(alice, limit=2, after=first.last_id)
    assert ([video.id for video in rest.data], rest.has_more) == ([ids[0]], False)
    assert [video.id for video in world.videos.page(alice, order="asc").data] == ids


def test_a_key_with_daily_credits_is_refused_past_them_before_anything_is_claimed(world) -> None:
    world.ledger.quoted["sora-2:10:small"] = 40
    frugal = world.videos.authenticate(f"Bearer {create_key(world.keys, 'frugal', daily_credits=100)}")
    made = [world.videos.create(frugal, {"prompt": f"a fox {n}"}, []).id for n in range(2)]
    error = refused(world.videos.create, frugal, {"prompt": "a fox 3"}, [])
    assert (error.status, error.code) == (429, "insufficient_quota")
    assert 0 < (error.retry_after or 0) <= 24 * 3600 + 1
    assert [request_id for request_id, _ in world.request_queue.resent] == made
    assert len(world.store.jobs) == 2


def test_a_request_repeated_with_its_idempotency_key_counts_against_a_keys_credits_once(world) -> None:
    world.ledger.quoted["sora-2:10:small"] = 60
    frugal = world.videos.authenticate(f"Bearer {create_key(world.keys, 'frugal', daily_credits=100)}")
    for _ in range(3):
        world.videos.create(frugal, {"prompt": "a fox"}, [], "order-1")
    assert world.keys.spent == {("frugal", world.clock().date()): 60}


def test_a_key_request_of_a_kind_not_quoted_is_priced_at_the_dearest_quote(world) -> None:
    world.ledger.quoted["veo-3.1:8:720p"] = 90
    frugal = world.videos.authenticate(f"Bearer {create_key(world.keys, 'frugal', daily_credits=100)}")
    world.videos.create(frugal, {"prompt": "a fox"}, [])
    assert world.keys.spent == {("frugal", world.clock().date()): 90}


def test_the_providers_quote_of_a_key_request_prices_the_next_even_without_a_stack_budget(world, alice) -> None:
    assert world.daily_credit_budget is None
    world.videos.create(alice, {"prompt": "a fox"}, [])
    world.deliver_starts()
    assert world.ledger.quoted == {"sora-2:10:small": 30}  # the fake provider's estimated_credit
